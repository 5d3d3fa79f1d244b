"""Old keyword names of public functions, kept working for a while with a ``DeprecationWarning``.

One vocabulary across the Python API: ``customer_col`` for the customer id column, ``cutoff`` for the
prediction time (the instant features, labels, scores and values are computed at), ``lookback`` for
the inactivity window in days. ``as_of`` stays the date a whole dataset is as of (``validate``,
``load_store``, ``monitor``, the report), which is not a prediction time.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


def renamed(**new_names: str) -> Callable[[F], F]:
    """Accept the old keyword names of a function, warn, and pass them on under their new names.

    Examples
    --------
    >>> @renamed(id_column="customer_col")
    ... def ids(*, customer_col=None):
    ...     return customer_col
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     ids(id_column="id")
    'id'
    >>> str(caught[0].message)
    "ids(): the keyword 'id_column' is deprecated; use 'customer_col'."
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in new_names.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{func.__name__}() got both {old!r} and its new name {new!r}.")
                warnings.warn(
                    f"{func.__name__}(): the keyword {old!r} is deprecated; use {new!r}.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return cast(F, wrapper)

    return decorate
