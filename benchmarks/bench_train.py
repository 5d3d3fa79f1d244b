"""Training time and memory: candidate selection and refit against one tested fit, in the same run.

``churnrisk train`` compares candidates (gradient boosting, logistic regression, the baselines, blends)
and refits the winner on the newest cutoffs. This script measures what each costs against the
training of a single gradient-boosting fit (``--model gbm --no-refit``, the training of earlier
versions), on the same demo store, alternating the modes in fresh processes so that the machine's
drift hits them alike. It prints each run and the medians. The refit is one more fit of the winner
on more rows by design; the candidates alone must cost well under a second single fit.

    python benchmarks/bench_train.py                       # 20,000 demo customers, 3 runs each
    python benchmarks/bench_train.py --customers 200000 --runs 3

``--scale`` measures ``churnrisk train`` (the default: candidates and refit) at 200,000 and 1,000,000
demo customers instead: wall time, peak memory (the child process's ``ru_maxrss``), the training
matrix (labelled rows × features, from the model's metadata) and, in the same run, the floor: a bare
``HistGradientBoostingClassifier`` with the booster's own settings, 150 rounds without early
stopping, fitted on train's own training matrix (every labelled row of every cutoff, built by the
same functions and encoded by the same preparation; only the fit is timed). The demo stores are
written once under ``bench-data/`` (git-ignored) and reused.

    python benchmarks/bench_train.py --scale --runs 3
    python benchmarks/bench_train.py --scale --sizes 200000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
started = time.perf_counter()
from churnrisk.cli import main
sys.argv = ["churnrisk", *{argv!r}]
try:
    main()
except SystemExit as exit:
    if exit.code:
        raise
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024}}))
"""

#: Where ``--scale`` keeps its demo stores (git-ignored).
BENCH_DATA = Path(__file__).resolve().parents[1] / "bench-data"

FLOOR = """
import json, resource, time
from churnrisk.model import feature_part, input_schema, make_pipeline, training_matrix
from churnrisk.training import default_cutoffs, training_rows
from churnrisk.validation import load_store
store = load_store({data!r})
cutoffs = default_cutoffs(store, horizon=60)
rows = training_rows(store, cutoffs, definition="subscription", horizon=60)
features = feature_part(rows)
features = features.loc[:, features.notna().any()]  # train leaves out features never observed
schema = input_schema(features)
X, y = training_matrix(features, schema), rows["churned"].to_numpy(dtype=int)
del store, rows, features
pipeline = make_pipeline(schema)
encoded = pipeline[:-1].fit_transform(X, y)
del X
booster = pipeline[-1].set_params(early_stopping=False)
started = time.perf_counter()
booster.fit(encoded, y)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"wall_seconds": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "rows": encoded.shape[0],
                  "cols": encoded.shape[1], "rounds": int(booster.n_iter_)}}))
"""

MODES = {
    "single gbm fit (--model gbm --no-refit)": ["--model", "gbm", "--no-refit"],
    "candidates (--no-refit)": ["--no-refit"],
    "candidates + refit (default)": [],
}


def run(data: Path, out: Path, extra: list[str]) -> dict:
    train = ["train", str(data), "--definition", "subscription", "--horizon", "60", "-o", str(out)]
    return command([*train, "--overwrite", *extra])


def command(argv: list[str]) -> dict:
    """``churnrisk <argv>`` in a fresh process: its wall and CPU seconds and peak RSS (MiB)."""
    return _child(CHILD.format(argv=argv))


def _child(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the benchmark's child process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _label(customers: int) -> str:
    if customers % 1_000_000 == 0:
        return f"{customers // 1_000_000}m"
    return f"{customers // 1000}k" if customers % 1000 == 0 else str(customers)


def demo_store(customers: int, folder: Path) -> Path:
    """``folder/demo-<size>``, written once (into a temporary folder renamed at the end)."""
    path = folder / f"demo-{_label(customers)}"
    if not path.exists():
        from churnrisk.demo import write_demo_data

        partial = folder / f".{path.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        write_demo_data(partial, n_customers=customers, seed=0, fmt="parquet")
        partial.rename(path)
    return path


def scale(sizes: list[int], runs: int, folder: Path) -> None:
    """Train at each size ``runs`` times, each beside a bare fit of the same matrix shape."""
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for customers in sizes:
            data = demo_store(customers, folder)
            trained, floors = [], []
            for i in range(runs):
                out = Path(tmp) / "m.skops"
                figures = run(data, out, [])
                meta = json.loads(out.with_suffix(".json").read_text())
                floor = _child(FLOOR.format(data=str(data)))
                rows, cols = floor["rows"], floor["cols"]
                if cols != len(meta["schema"]):
                    raise SystemExit(
                        f"the bare fit's matrix is not train's: {floor}, {len(meta['schema'])} columns"
                    )
                trained.append({**figures, "rows": rows, "cols": cols})
                floors.append(floor)
                print(
                    f"{customers:,} customers, run {i + 1}: train {figures['wall_seconds']:.1f} s, "
                    f"{figures['peak_rss_mb'] / 1024:.2f} GiB peak ({rows:,} x {cols} training matrix); "
                    f"bare fit {floor['wall_seconds']:.1f} s, {floor['peak_rss_mb'] / 1024:.2f} GiB",
                    flush=True,
                )
            train_s, floor_s = (statistics.median(r["wall_seconds"] for r in rs) for rs in (trained, floors))
            peak = statistics.median(r["peak_rss_mb"] for r in trained) / 1024
            floor_peak = statistics.median(r["peak_rss_mb"] for r in floors) / 1024
            print(
                f"median of {runs}, {customers:,} customers: train {train_s:.1f} s, {peak:.2f} GiB peak; "
                f"bare fit {floor_s:.1f} s, {floor_peak:.2f} GiB; train / bare fit {train_s / floor_s:.2f}x",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, help="an existing event-store folder (default: a new demo)")
    parser.add_argument("--scale", action="store_true", help="train at --sizes beside the bare-fit floor")
    parser.add_argument("--sizes", default="200000,1000000", help="--scale: demo customers, comma-separated")
    parser.add_argument(
        "--stores", type=Path, default=BENCH_DATA, help="--scale: where the demo stores are written"
    )
    args = parser.parse_args()
    if args.scale:
        scale([int(n) for n in args.sizes.split(",")], args.runs, args.stores)
        return
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        data = args.data or Path(tmp) / "data"
        if args.data is None:
            from churnrisk.demo import write_demo_data

            write_demo_data(data, n_customers=args.customers, seed=0, fmt="parquet")
        results: dict[str, list[dict]] = {name: [] for name in MODES}
        for i in range(args.runs):
            for name, extra in MODES.items():
                figures = run(data, Path(tmp) / "m.skops", extra)
                results[name].append(figures)
                print(f"run {i + 1} {name}: {figures['wall_seconds']:.1f} s, {figures['peak_rss_mb']:.0f} MB")
        medians = {
            name: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            for name, rows in results.items()
        }
        for name, m in medians.items():
            print(
                f"median {name}: {m['wall_seconds']:.1f} s wall, {m['cpu_seconds']:.1f} s CPU, "
                f"{m['peak_rss_mb']:.0f} MB peak"
            )
        single, chosen, full = (medians[name]["wall_seconds"] for name in MODES)
        print(f"candidates / single fit: {chosen / single:.2f}x wall")
        print(f"candidates + refit / single fit: {full / single:.2f}x wall")


if __name__ == "__main__":
    main()
