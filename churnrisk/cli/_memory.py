"""How a command's process hands freed memory back (the command line's setting, never the library's)."""

from __future__ import annotations

import ctypes
import sys

__all__ = ["return_freed_memory"]

#: ``M_MMAP_THRESHOLD`` of glibc's ``mallopt``; blocks of this size or more get their own mapping.
_M_MMAP_THRESHOLD = -3
_ONE_MIB = 1 << 20


def return_freed_memory() -> bool:
    """Give every block of 1 MiB or more its own mapping, returned to the system when freed.

    glibc raises that threshold to the size of the last mapped block freed, so that the arrays a
    command makes and drops by the hundred (a few MiB each, e.g. one per feature column) end up in
    its heap, whose freed space the system does not get back: the peak memory then counts them
    again. A fixed threshold keeps it to what is in use. Returns whether the setting was made
    (only with glibc, on Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _ONE_MIB))
