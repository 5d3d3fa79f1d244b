"""Training sets: cutoffs stacked by (customer_id, cutoff), incremental update == full rebuild."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from churnrisk.cli import app
from churnrisk.errors import ChurnriskError
from churnrisk.features import build_features
from churnrisk.labels import make_labels
from churnrisk.store import EventStore
from churnrisk.training import build_training_set, make_cutoffs, update_training_set

T = pd.Timestamp
OPTIONS = {"definition": "subscription", "horizon": 30, "windows": (30, 90)}


@pytest.mark.parametrize(
    ("first", "last", "every", "expected"),
    [
        ("2024-01-31", "2024-04-30", "1M", ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"]),
        ("2024-01-01", "2024-01-20", "1W", ["2024-01-01", "2024-01-08", "2024-01-15"]),
        ("2024-01-01", "2024-01-03", "1D", ["2024-01-01", "2024-01-02", "2024-01-03"]),
        ("2024-01-15", "2024-12-31", "1Q", ["2024-01-15", "2024-04-15", "2024-07-15", "2024-10-15"]),
        ("2022-02-28", "2024-03-01", "1Y", ["2022-02-28", "2023-02-28", "2024-02-28"]),
        ("2024-01-01", "2024-01-01", "2m", ["2024-01-01"]),
    ],
)
def test_make_cutoffs(first, last, every, expected):
    assert make_cutoffs(first, last, every=every) == [datetime.fromisoformat(d) for d in expected]


@pytest.mark.parametrize(("every", "match"), [("month", "every"), ("0M", "every"), ("1X", "every")])
def test_make_cutoffs_refuses_bad_steps(every, match):
    with pytest.raises(ChurnriskError, match=match):
        make_cutoffs("2024-01-01", "2024-06-01", every=every)


@pytest.mark.parametrize(
    ("first", "last", "every", "expected"),
    [
        # month ends stay month ends: each step is counted from the last cutoff, not from the one before
        (
            "2024-01-01",
            "2024-05-31",
            "1M",
            ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"],
        ),
        ("2024-01-15", "2024-04-01", "30D", ["2024-02-01", "2024-03-02", "2024-04-01"]),
        ("2023-01-01", "2024-03-31", "2Q", ["2023-03-31", "2023-09-30", "2024-03-31"]),
        ("2024-03-31", "2024-03-31", "1W", ["2024-03-31"]),
    ],
)
def test_make_cutoffs_counted_back_from_the_last(first, last, every, expected):
    got = make_cutoffs(first, last, every=every, anchor="last")
    assert got == [datetime.fromisoformat(d) for d in expected]


def test_make_cutoffs_refuses_reversed_dates():
    with pytest.raises(ChurnriskError, match="before"):
        make_cutoffs("2024-06-01", "2024-01-01")


CUTOFFS = [T("2024-03-15"), T("2024-06-15"), T("2024-09-15"), T("2024-12-15")]


@pytest.fixture(scope="module")
def full(demo_store) -> pd.DataFrame:
    return build_training_set(demo_store, CUTOFFS, **OPTIONS)


def test_rows_are_the_features_and_labels_of_each_cutoff(demo_store, full):
    assert not full.duplicated(["customer_id", "cutoff"]).any()
    assert full["cutoff"].drop_duplicates().tolist() == CUTOFFS
    assert list(full.columns[:2]) == ["customer_id", "cutoff"]
    assert list(full.columns[-2:]) == ["churned", "churn_type"]
    for cutoff in CUTOFFS:
        rows = full[full["cutoff"] == cutoff].set_index("customer_id")
        features = build_features(demo_store, cutoff, windows=(30, 90)).loc[rows.index]
        if cutoff < CUTOFFS[-1]:  # the last one is censored (see below)
            labels = make_labels(demo_store, cutoff, definition="subscription", horizon=30)
            assert rows.index.tolist() == labels.index.tolist()
            assert (rows["churned"].astype("int64") == labels["churned"]).all()
            assert rows["churn_type"].equals(labels["churn_type"])
        expected = features.astype({c: "object" for c in features.select_dtypes("category")})
        actual = rows[features.columns].astype(
            {c: "object" for c in rows[features.columns].select_dtypes("category")}
        )
        # Bit for bit, although statistics over the whole history run on from one cutoff to the next.
        assert_frame_equal(actual, expected, check_exact=True)


def test_censored_cutoffs_are_kept_without_labels(full, demo_store):
    last = full[full["cutoff"] == CUTOFFS[-1]]
    assert len(last) > 0 and last["churned"].isna().all()  # the demo data ends 2024-12-30
    assert full[full["cutoff"] < CUTOFFS[-1]]["churned"].notna().all()
    assert full["churned"].dtype == "Int64"


def _truncate(store: EventStore, end: datetime) -> EventStore:
    """The store as it was at ``end``: later events unknown, later ends and resolutions not yet happened."""
    from churnrisk.contract import TABLES

    tables = {}
    for name, frame in store.tables.items():
        time = TABLES[name].time
        if name != "customers" and time is not None:
            frame = frame.filter(pl.col(time) <= end)
        for column in ("ended_at", "resolved_at"):
            if column in frame.columns:
                frame = frame.with_columns(pl.when(pl.col(column) <= end).then(pl.col(column)).alias(column))
        tables[name] = frame
    return EventStore(tables)


def test_incremental_update_equals_a_full_rebuild(demo_store, full):
    # In July the June cutoff was still censored; then the data grew and two cutoffs were added.
    past = _truncate(demo_store, datetime(2024, 7, 1))
    existing = build_training_set(past, CUTOFFS[:2], **OPTIONS)
    assert existing[existing["cutoff"] == CUTOFFS[1]]["churned"].isna().all()
    updated = update_training_set(existing, demo_store, CUTOFFS[2:], **OPTIONS)
    assert_frame_equal(updated, full, check_exact=True)


def test_update_from_a_file_and_repeated_cutoffs(demo_store, full, tmp_path):
    path = tmp_path / "training.parquet"
    build_training_set(demo_store, CUTOFFS[:3], **OPTIONS).to_parquet(path, index=False)
    updated = update_training_set(path, demo_store, CUTOFFS[2:], **OPTIONS)
    assert_frame_equal(updated, full, check_exact=True)


def test_update_refuses_other_options(demo_store, full):
    with pytest.raises(ChurnriskError, match="horizon"):
        update_training_set(full, demo_store, CUTOFFS[-1:], **{**OPTIONS, "horizon": 60})


def test_progress_is_reported(demo_store):
    calls = []
    build_training_set(
        demo_store, CUTOFFS[:2], progress=lambda done, total: calls.append((done, total)), **OPTIONS
    )
    assert calls == [(1, 2), (2, 2)]


def test_cli_training_set_and_append(demo_store, demo_folder, full, tmp_path):
    folder = demo_folder
    out = tmp_path / "training.parquet"
    common = ["training-set", str(folder), "--horizon", "30", "--definition", "subscription",
              "--windows", "30,90", "-o", str(out)]  # fmt: skip
    first = CliRunner().invoke(app, [*common, "--first-cutoff", "2024-03-15", "--last-cutoff", "2024-06-15",
                                     "--every", "3M"])  # fmt: skip
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, [*common, "--first-cutoff", "2024-09-15", "--last-cutoff", "2024-09-15"])
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    later = ["--first-cutoff", "2024-09-15", "--last-cutoff", "2024-12-15", "--every", "3M", "--append"]
    appended = CliRunner().invoke(app, [*common, *later])
    assert appended.exit_code == 0, appended.output
    assert "4 cutoffs" in appended.stdout
    # (a column that is empty in every row comes back from Parquet as text, not as a category)
    assert_frame_equal(_plain(pd.read_parquet(out)), _plain(full), check_exact=True)
    bad = CliRunner().invoke(app, [*common, "--first-cutoff", "2024-03-15", "--last-cutoff", "2024-06-15",
                                   "--every", "monthly", "--overwrite"])  # fmt: skip
    assert bad.exit_code == 1 and "every" in bad.stderr and "Traceback" not in bad.output


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: "object" for c in frame.select_dtypes(["category", "object"])})


def test_customers_outside_the_population_at_one_cutoff_only():
    """Customer 2 subscribes before signing up: at the February cutoff they are eligible but not
    in the feature population (missing features, so the counts are float32 there); in March they
    are in it. Stacking and updating keep every count 32-bit."""
    store = EventStore.from_frames(
        {
            "customers": pd.DataFrame(
                {"customer_id": [1, 2], "signup_at": [T("2024-01-01"), T("2024-03-15")]}
            ),
            "subscriptions": pd.DataFrame(
                {
                    "customer_id": [1, 2],
                    "started_at": [T("2024-01-01"), T("2024-02-01")],
                    "mrr": [10.0, 20.0],
                }
            ),
            "orders": pd.DataFrame(
                {
                    "customer_id": [1, 2, 1],
                    "ordered_at": [T("2024-02-10"), T("2024-03-20"), T("2024-06-30")],
                    "amount": [5.0, 7.0, 1.0],
                }
            ),
        }
    )
    cutoffs = [T("2024-02-29"), T("2024-03-31")]
    options = {"definition": "subscription", "horizon": 30, "windows": (30,)}
    full = build_training_set(store, cutoffs, **options)
    counts = full["purchases_frequency_30d"]
    assert counts.dtype == "float32"
    assert counts.tolist()[0:2] == [1.0, pytest.approx(float("nan"), nan_ok=True)]
    assert counts.tolist()[2:] == [0.0, 1.0]
    updated = update_training_set(
        build_training_set(store, cutoffs[:1], **options), store, cutoffs[1:], **options
    )
    assert_frame_equal(updated, full, check_exact=True)


def test_append_keeps_32_bit_counts_and_merges_categories():
    from churnrisk.training._storage import _append

    old = pd.DataFrame(
        {
            "n": pd.Series([1, 2], dtype="int32"),
            "x": pd.Series([0.5, 1.5], dtype="float32"),
            "plan": pd.Categorical(["pro", "basic"]),
            "churned": pd.array([1, 0], dtype="Int64"),
        }
    )
    added = pd.DataFrame(
        {
            "n": pd.Series([3.0, float("nan")], dtype="float32"),
            "x": pd.Series([2.5, 3.5], dtype="float32"),
            "plan": pd.Categorical(["team", "pro"]),
            "churned": pd.array([None, 1], dtype="Int64"),
        }
    )
    out = _append(old, added)
    assert out.dtypes.astype(str).to_dict() == {
        "n": "float32",
        "x": "float32",
        "plan": "category",
        "churned": "Int64",
    }
    assert out["n"].tolist()[:3] == [1.0, 2.0, 3.0] and pd.isna(out["n"].iloc[3])
    assert out["plan"].cat.categories.tolist() == ["basic", "pro", "team"]
    assert out["plan"].tolist() == ["pro", "basic", "team", "pro"]
    assert out["churned"].tolist() == [1, 0, pd.NA, 1]


def test_append_merges_text_of_different_pandas_dtypes():
    import polars as pl

    from churnrisk.features._build import to_pandas_column
    from churnrisk.training._storage import _append

    old = pd.DataFrame({"group": to_pandas_column(pl.Series([None, None], dtype=pl.String))})  # no categories
    added = pd.DataFrame({"group": pd.Series(["promoter", None], dtype="string")})
    out = _append(old, added)
    assert out["group"].cat.categories.tolist() == ["promoter"]
    assert out["group"].isna().tolist() == [True, True, False, True]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_running_history_gives_the_features_of_each_cutoff_bit_for_bit(seed):
    """Random stores with amounts whose sums depend on the order of adding: every cutoff of a
    training set (history statistics run on from one cutoff to the next) equals build_features."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n, start = 40, np.datetime64("2024-01-01T00:00:00")

    def times(k: int) -> np.ndarray:
        return start + rng.integers(0, 200 * 86_400, k).astype("timedelta64[s]")

    def ids(k: int) -> np.ndarray:
        return rng.integers(1, 12, k)

    tables = {
        "customers": pd.DataFrame({"customer_id": np.arange(1, 12)}),
        "orders": pd.DataFrame(
            {"customer_id": ids(n), "ordered_at": times(n), "amount": rng.random(n) * 1e3}
        ),
        "subscriptions": pd.DataFrame(
            {"customer_id": np.arange(1, 12), "started_at": times(11), "mrr": rng.random(11) * 100}
        ),
        "surveys": pd.DataFrame(
            {
                "customer_id": ids(n),
                "answered_at": times(n),
                "kind": rng.choice(["csat", "nps"], n),
                "score": rng.integers(0, 11, n).astype(float),
            }
        ),  # fmt: skip
        "payments": pd.DataFrame(
            {
                "customer_id": ids(n),
                "attempted_at": times(n),
                "status": rng.choice(["failed", "succeeded"], n),
            }
        ),
    }
    store = EventStore.from_frames(tables)
    cutoffs = sorted({T("2024-01-10") + pd.Timedelta(days=int(d)) for d in rng.integers(0, 190, 4)})
    full = build_training_set(
        store, cutoffs, definition="inactivity", horizon=5, lookback=400, windows=(7, 30)
    )
    for cutoff in cutoffs:
        rows = full[full["cutoff"] == cutoff].set_index("customer_id")
        features = build_features(store, cutoff, windows=(7, 30)).loc[rows.index]
        text = {c: "object" for c in features.select_dtypes("category")}  # categories of all cutoffs
        assert_frame_equal(rows[features.columns].astype(text), features.astype(text), check_exact=True)


def test_training_inputs_read_every_table_and_what_labels_need(demo_store):
    """Reading only ``training_inputs()`` keeps every table (so the end of the data, the latest
    event of any table, is the same) and gives the same training set."""
    from churnrisk.contract import TABLES
    from churnrisk.training import training_inputs

    inputs = training_inputs()
    assert sorted(inputs) == sorted(TABLES)
    assert inputs["subscriptions"] is None and inputs["payments"] is None  # churn types read them whole
    projected = EventStore(
        {
            name: frame
            if inputs[name] is None
            else frame.select(c for c in frame.columns if c in inputs[name])
            for name, frame in demo_store.tables.items()
        }
    )
    assert_frame_equal(
        build_training_set(projected, CUTOFFS, **OPTIONS), build_training_set(demo_store, CUTOFFS, **OPTIONS)
    )
