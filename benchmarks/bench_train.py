"""Training time and memory: candidate selection and refit against one tested fit, in the same run.

``churnrisk train`` compares candidates (gradient boosting, logistic regression, the baselines, blends)
and refits the winner on the newest cutoffs. This script measures what each costs against the
training of a single gradient-boosting fit (``--model gbm --no-refit``, the training of earlier
versions), on the same demo store, alternating the modes in fresh processes so that the machine's
drift hits them alike. It prints each run and the medians. The refit is one more fit of the winner
on more rows by design; the candidates alone must cost well under a second single fit.

    python benchmarks/bench_train.py                       # 20,000 demo customers, 3 runs each
    python benchmarks/bench_train.py --customers 200000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
started = time.perf_counter()
from churnrisk.cli import main
sys.argv = ["churnrisk", "train", {data!r}, "--definition", "subscription", "--horizon", "60",
            "-o", {out!r}, "--overwrite", *{extra!r}]
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

MODES = {
    "single gbm fit (--model gbm --no-refit)": ["--model", "gbm", "--no-refit"],
    "candidates (--no-refit)": ["--no-refit"],
    "candidates + refit (default)": [],
}


def run(data: Path, out: Path, extra: list[str]) -> dict:
    code = CHILD.format(data=str(data), out=str(out), extra=extra)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, help="an existing event-store folder (default: a new demo)")
    args = parser.parse_args()
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
