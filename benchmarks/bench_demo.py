"""Speed and memory of the demo-data generator (``churnrisk.demo.make_demo_data``).

Each size runs in a fresh subprocess so that its peak memory (``ru_maxrss``) is its own.

    python benchmarks/bench_demo.py                  # 100,000 and 1,000,000 customers
    python benchmarks/bench_demo.py --sizes 100000   # only 100,000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, time
from churnrisk.demo import make_demo_data

started = time.perf_counter()
tables = make_demo_data({n}, seed=0)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
events = sum(len(frame) for name, frame in tables.items() if name not in ("customers", "ground_truth"))
print(json.dumps({{
    "customers": {n},
    "events": events,
    "rows": {{name: len(frame) for name, frame in tables.items()}},
    "wall_seconds": wall,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
    "peak_rss_mb": usage.ru_maxrss / 1024,
}}))
"""


def run(n: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(n=n)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print(f"{'customers':>10} {'events':>11} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}")
    for n in args.sizes:
        result = run(n)
        print(
            f"{result['customers']:>10,} {result['events']:>11,} {result['wall_seconds']:>8.1f} "
            f"{result['cpu_seconds']:>8.1f} {result['peak_rss_mb']:>8.0f}"
        )
        print("    " + ", ".join(f"{name} {rows:,}" for name, rows in result["rows"].items()))


if __name__ == "__main__":
    main()
