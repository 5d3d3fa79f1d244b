"""Build the HTML report for a model and an event store, time it, and look at it in headless Chromium.

    python benchmarks/render_report.py MODEL DATA [--as-of YYYY-MM-DD] [--out DIR]

Prints the time to collect the numbers (scoring, evaluation, rates) and to render the HTML, the file
size, then renders the page with Debian's ``chromium`` and writes ``report.png`` (1280 × 4000) beside
``report.html`` in ``--out``: open the PNG to check the page by eye. Exits 1 when Chromium fails or a
section heading is missing from the rendered DOM.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from churnrisk.report import SECTIONS, collect_report, render_report
from churnrisk.validation import load_store

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


class Clock:
    """Wall and CPU time since the last lap (CPU time shows the work when other jobs share the cores)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> str:
        wall, cpu = time.perf_counter(), time.process_time()
        text = f"{wall - self.wall:.2f} s wall, {cpu - self.cpu:.2f} s CPU"
        self.wall, self.cpu = wall, cpu
        return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--as-of", default=None)
    parser.add_argument("--out", type=Path, default=Path("report-check"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    clock = Clock()
    store = load_store(args.data, as_of=args.as_of)
    loaded = clock.lap()
    results = collect_report(args.model, store, as_of=args.as_of)
    collected = clock.lap()
    text = render_report(results)
    rendered = clock.lap()
    html_file = args.out / "report.html"
    html_file.write_text(text, encoding="utf-8")
    n = 0 if results.scores is None else len(results.scores)
    print(f"customers scored: {n:,}")
    print(f"load + validate: {loaded}")
    print(f"collect (rates, evaluation, scoring): {collected}")
    print(f"render HTML: {rendered}, {len(text.encode()) / 1e6:.2f} MB -> {html_file}")

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        print("chromium is not installed: skipped the browser check (apt-get install chromium)")
        return 0
    png = args.out / "report.png"
    shot = chromium(
        binary, f"--screenshot={png.resolve()}", "--window-size=1280,4000", html_file.resolve().as_uri()
    )
    dom = chromium(binary, "--dump-dom", html_file.resolve().as_uri())
    headings = [h.strip() for h in re.findall(r"<h2>(.*?)</h2>", dom.stdout)]
    size = png.stat().st_size if png.exists() else 0
    print(f"chromium screenshot: exit {shot.returncode}, {png} ({size:,} bytes)")
    print(f"sections in the rendered DOM: {headings}")
    ok = shot.returncode == 0 and dom.returncode == 0 and headings == list(SECTIONS)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
