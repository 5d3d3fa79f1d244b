"""Make the demo business's tables, write them into a folder, or type them into a store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from churnrisk._io import write_table
from churnrisk.contract import TABLES
from churnrisk.demo._tables import demo_tables
from churnrisk.demo._world import _World
from churnrisk.errors import ChurnriskError
from churnrisk.store import EventStore

Format = Literal["parquet", "csv"]


def make_demo_data(
    n_customers: int = 2000,
    *,
    seed: int = 0,
    start: Any = "2023-01-01",
    end: Any = "2024-12-31",
) -> dict[str, pd.DataFrame]:
    """Generate the demo business: every contract table plus ``ground_truth``.

    Parameters
    ----------
    n_customers : int, default 2000
        Number of customers (subscribers and buyers together).
    seed : int, default 0
        Random seed; the same seed gives identical frames.
    start, end : date-like
        The observation window: customers sign up from ``start`` on, and every event happens
        strictly before ``end`` (so ``validate(store, as_of=end)`` passes).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``customers, orders, returns, subscriptions, tickets, surveys, payments, activity`` (columns as
        in :mod:`churnrisk.contract`) and ``ground_truth``: one row per customer with
        ``customer_id, customer_type, churned, churned_at, cause, churn_type``.

    Notes
    -----
    ``customers`` carries ``segment``, ``country``, ``channel``, ``plan`` (the plan at sign-up,
    subscribers only) and ``category`` (the favourite product category, buyers only). A subscriber's
    ``signup_at`` is the start of their first spell, a buyer's the time of their first order.
    ``churned_at`` is when a subscriber's last spell ended, or when a buyer stopped buying for good
    (the generator knows it; the data only shows that no order follows). ``churn_type`` is
    ``"involuntary"`` for churn from failed payments, ``"voluntary"`` otherwise, missing for
    customers who did not churn before ``end``. Every event happens strictly before ``end`` and,
    for a churner, no later than ``churned_at``.

    Examples
    --------
    >>> tables = make_demo_data(200, seed=1)
    >>> sorted(tables)[:3]
    ['activity', 'customers', 'ground_truth']
    >>> int(tables["ground_truth"]["churned"].sum()) > 0
    True
    """
    return demo_tables(_World.create(n_customers, seed=seed, start=start, end=end))


def write_demo_data(
    out_dir: str | os.PathLike[str],
    *,
    n_customers: int = 2000,
    seed: int = 0,
    start: Any = "2023-01-01",
    end: Any = "2024-12-31",
    fmt: Format = "parquet",
    overwrite: bool = False,
) -> DemoFiles:
    """Write the demo business into ``out_dir``: one file per table plus ``ground_truth``.

    Parameters are those of :func:`make_demo_data`, plus ``fmt`` (``"parquet"`` or ``"csv"``) and
    ``overwrite``: a folder that already holds files is refused unless it is set, and even then
    only the demo's own table files are replaced. Each file is written atomically.

    Returns
    -------
    DemoFiles
        The files written, their row counts, and the churners by type and cause.
    """
    if fmt not in ("parquet", "csv"):
        raise ChurnriskError(f"The 'fmt' parameter must be 'parquet' or 'csv'. Got {fmt!r} instead.")
    folder = _check_folder(Path(out_dir), overwrite=overwrite)
    tables = make_demo_data(n_customers, seed=seed, start=start, end=end)
    folder.mkdir(parents=True, exist_ok=True)  # only now: a failed run leaves nothing behind
    written = {}
    for name, frame in tables.items():
        written[name] = write_table(frame, folder / f"{name}.{fmt}", overwrite=overwrite)
        # Leave no file of the other format behind (only reached with overwrite): the store
        # refuses a table that is there twice.
        other = folder / f"{name}.{'csv' if fmt == 'parquet' else 'parquet'}"
        other.unlink(missing_ok=True)
    rows = {name: len(frame) for name, frame in tables.items()}
    return DemoFiles(files=written, rows=rows, churners=churners_by_cause(tables["ground_truth"]))


@dataclass(frozen=True)
class DemoFiles:
    """What :func:`write_demo_data` wrote."""

    files: dict[str, Path]
    rows: dict[str, int]
    churners: pd.DataFrame


def churners_by_cause(ground_truth: pd.DataFrame) -> pd.DataFrame:
    """Churners by customer type and cause, and their share of the customers of that type."""
    churned = ground_truth[ground_truth["churned"]]
    table = churned.groupby(["customer_type", "cause"]).size().rename("churners").reset_index()
    customers = ground_truth["customer_type"].value_counts()
    return table.assign(share=table["churners"] / table["customer_type"].map(customers).to_numpy())


def demo_store(n_customers: int = 2000, seed: int = 0) -> EventStore:
    """The demo business as an :class:`~churnrisk.store.EventStore` (without the ground truth)."""
    tables = make_demo_data(n_customers, seed=seed)
    return EventStore.from_frames({name: frame for name, frame in tables.items() if name in TABLES})


def _check_folder(folder: Path, *, overwrite: bool) -> Path:
    if folder.exists() and not folder.is_dir():
        raise ChurnriskError(f"{folder} exists and is not a folder. Suggestion: choose another path.")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise ChurnriskError(
            f"the folder {folder} is not empty. Suggestion: choose an empty or new folder, "
            "or pass --overwrite to replace the demo tables in it."
        )
    return folder
