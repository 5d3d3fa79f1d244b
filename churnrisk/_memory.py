"""How a process hands freed memory back to the system, so that a peak counts what is in use.

Two allocators hold what churnrisk frees: Polars' (jemalloc: tables read, frames converted) and the
C library's (glibc's ``malloc``: NumPy and pandas arrays). Each keeps freed memory for reuse, which is
fast but makes the process's peak count memory it no longer uses.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

__all__ = ["POLARS_ALLOCATOR", "return_freed_memory", "return_polars_memory", "trim_freed_memory"]

#: ``M_MMAP_THRESHOLD`` of glibc's ``mallopt``; blocks of this size or more get their own mapping.
_M_MMAP_THRESHOLD = -3
_ONE_MIB = 1 << 20
#: Polars' allocator (jemalloc) settings for a command: freed pages go back to the system at once.
POLARS_ALLOCATOR = "dirty_decay_ms:0,muzzy_decay_ms:0"
#: What Polars writes into ``_RJEM_MALLOC_CONF`` on import when nobody set it: a process started
#: by one that had imported Polars inherits it, and it is not the user's choice.
POLARS_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def _libc() -> Any:
    """The process's own C library when it is glibc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def return_freed_memory() -> bool:
    """Give every block of 1 MiB or more its own mapping, returned to the system when freed.

    glibc raises that threshold to the size of the last mapped block freed, so that the arrays a
    command makes and drops by the hundred (a few MiB each, e.g. one per feature column) end up in
    its heap, whose freed space the system does not get back: the peak memory then counts them
    again. A fixed threshold keeps it to what is in use, at the price of mapping each such block
    afresh (training, which makes and drops the same arrays fit after fit, runs 15% slower with it,
    and trims instead: :func:`trim_freed_memory`). Returns whether the setting was made (only with
    glibc, on Linux).
    """
    libc = _libc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, _ONE_MIB))


def trim_freed_memory() -> bool:
    """Hand the C library's freed heap back to the system now (``malloc_trim``), e.g. before a fit
    that needs the room. Returns whether anything was returned (only with glibc, on Linux)."""
    libc = _libc()
    return libc is not None and bool(libc.malloc_trim(0))


def return_polars_memory() -> None:
    """Have Polars' allocator return freed memory at once (unless the user set it otherwise).

    jemalloc keeps freed pages and purges them only as it allocates again, after a delay: a table
    read and dropped, or a frame converted to pandas and let go, still counts in the process's
    memory for the rest of the command. jemalloc reads ``_RJEM_MALLOC_CONF`` when Polars is loaded
    (Polars puts its own defaults first; a later setting wins), so the command line calls this
    before any command module imports Polars. A setting of the user's own is kept.
    """
    if os.environ.get("_RJEM_MALLOC_CONF", "") in ("", POLARS_DEFAULT):
        os.environ["_RJEM_MALLOC_CONF"] = POLARS_ALLOCATOR
