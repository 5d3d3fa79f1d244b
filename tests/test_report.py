"""The HTML report: rendered from a hand-made results object, checked as text and in headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnrisk.errors import ChurnriskError
from churnrisk.report import SECTIONS, ReportResults, render_report

EVIL = '<script>alert("x")</script>'


def fake_results(**changes) -> ReportResults:
    """A small, fully known set of results: 6 months of rates, 3 scorers, 8 scored customers."""
    rng = np.random.default_rng(0)
    rates = pd.DataFrame(
        {
            "period_start": pd.date_range("2024-01-01", periods=6, freq="MS"),
            "period_end": pd.date_range("2024-02-01", periods=6, freq="MS"),
            "customers_start": [1000, 990, 985, 1001, 995, 980],
            "customers_new": [40, 45, 60, 38, 30, 35],
            "customers_lost": [50, 50, 44, 44, 45, 40],
            "customers_end": [990, 985, 1001, 995, 980, 975],
            "customer_churn_rate": [0.01, 0.005, -0.016, 0.006, 0.015, 0.005],
            "adjusted_churn_rate": [0.049, 0.049, 0.043, 0.043, 0.044, 0.040],
            "gross_revenue_churn": [0.06, 0.05, 0.055, 0.04, 0.05, 0.045],
            "net_revenue_churn": [0.02, 0.01, -0.01, 0.0, 0.02, 0.01],
        }
    )
    y_true = np.r_[np.ones(40), np.zeros(160)].astype(int)
    model = np.clip(0.2 + 0.35 * y_true + rng.normal(0, 0.15, 200), 0.01, 0.99)
    metrics = pd.DataFrame(
        {
            "roc_auc": [0.91, 0.62],
            "average_precision": [0.71, 0.3],
            "lift_at_10pct": [3.5, 1.4],
            "n": [200, 200],
        },
        index=["model", "recency"],
    )
    scores = pd.DataFrame(
        {
            "customer_id": ["c-8", EVIL, "c-3", "c-1", "c-5", "c-2", "c-7", "c-4"],
            "churn_probability": [0.92, 0.85, 0.8, 0.55, 0.4, 0.2, 0.1, 0.05],
            "risk_tier": ["high", "high", "high", "medium", "medium", "low", "low", "low"],
            "revenue_at_risk": [92.0, 170.0, 40.0, 55.0, 20.0, 4.0, 1.0, 0.5],
            "reasons": [
                "3 failed payments in the last 30 days; CSAT fell from 5 to 2",
                ["2 failed payments in the last 30 days", "Tom & Jerry <b>complained</b>"],
                "no order for 140 days, usual gap 30",
                "2 complaints in the last 90 days",
                "",
                None,
                "x",
                "y",
            ],
            "segment": ["smb", "enterprise & co", "smb", EVIL, "smb", "enterprise & co", "smb", "smb"],
        }
    )
    values = {
        "as_of": pd.Timestamp("2024-07-01"),
        "model_name": "demo<model>.skops",
        "version": "0.1.0",
        "rates": rates,
        "metrics": metrics,
        "y_true": y_true,
        "y_scores": {"model": model, "recency": rng.random(200)},
        "scores": scores,
        "segment_col": "segment",
        "top_n": 5,
    }
    return ReportResults(**{**values, **changes})


class _Collector(HTMLParser):
    """Every tag with its attributes, and the text by tag."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in ("img", "meta", "br"):
            self._open.append(tag)

    def handle_endtag(self, tag):
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data):
        if self._open:
            self.text.setdefault(self._open[-1], []).append(data)


def parse(text: str) -> _Collector:
    collector = _Collector()
    collector.feed(text)
    return collector


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(fake_results())


def test_every_section_heading_in_order(page):
    headings = parse(page).text["h2"]
    assert headings == list(SECTIONS)


def test_self_contained_no_script_no_external_address(page):
    parsed = parse(page)
    assert not any(tag == "script" for tag, _ in parsed.tags)
    assert not any(tag == "link" for tag, _ in parsed.tags)
    for _, attrs in parsed.tags:
        for name in ("src", "href"):
            if attrs.get(name) is not None:
                assert attrs[name].startswith("data:image/png;base64,"), attrs[name][:40]
    outside_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert re.search(r"https?:|//[a-z]|url\(|@import", outside_images, flags=re.IGNORECASE) is None


def test_images_are_real_pngs(page):
    images = [attrs["src"] for tag, attrs in parse(page).tags if tag == "img"]
    # rates, ROC, calibration, gain, risk distribution, reasons, revenue
    assert len(images) == 7
    for src in images:
        data = base64.b64decode(src.removeprefix("data:image/png;base64,"), validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 2_000


def test_user_strings_are_escaped(page):
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # the customer id and a segment
    assert "Tom &amp; Jerry &lt;b&gt;complained&lt;/b&gt;" in page  # a reason given as a list item
    assert "enterprise &amp; co" in page
    assert "demo&lt;model&gt;.skops" in page


def _rows(page: str, caption_start: str) -> list[list[str]]:
    """Cell texts of the table whose caption starts with ``caption_start``."""
    match = re.search(
        rf"<caption>{re.escape(caption_start)}.*?</caption>.*?<tbody>(.*?)</tbody>", page, flags=re.DOTALL
    )
    assert match, caption_start
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", match[1])]


def test_at_risk_table_lists_top_n_in_priority_order(page):
    rows = _rows(page, "The 5 customers at highest risk (of 8)")
    assert [r[0] for r in rows] == [
        "c-8",
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;",
        "c-3",
        "c-1",
        "c-5",
    ]
    assert rows[0][1:4] == ["92.0%", "high", "92.00"]
    assert rows[0][4] == "3 failed payments in the last 30 days; CSAT fell from 5 to 2"
    assert (
        rows[1][4] == "2 failed payments in the last 30 days; Tom &amp; Jerry &lt;b&gt;complained&lt;/b&gt;"
    )


def test_revenue_table_sums_by_segment(page):
    rows = _rows(page, "Revenue at risk by segment")
    # enterprise & co: 170 + 4; smb: 92 + 40 + 20 + 1 + 0.5; EVIL: 55
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("enterprise &amp; co", "2", "174.00"),
        ("smb", "5", "153.50"),
        ("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", "1", "55.00"),
    ]


def test_metrics_table_highlights_the_model(page):
    rows = _rows(page, "Model and baselines on the same customers")
    assert rows[0][:3] == ["model", "0.910", "0.710"]
    assert rows[1][:3] == ["recency", "0.620", "0.300"]
    assert '<tr class="highlight"><td>model</td>' in page


def test_rates_table_shows_percentages_and_negative_net_change(page):
    rows = _rows(page, "Last 6 periods")
    assert rows[2][0] == "2024-03-01"
    assert "-1.6%" in rows[2]  # customer churn can be negative (net growth)


def test_footer_names_date_model_and_version(page):
    footer = "".join(parse(page).text["footer"])
    assert "2024-07-01" in footer and "demo<model>.skops" in footer and "churnrisk 0.1.0" in footer


def test_missing_parts_keep_every_heading_with_a_note():
    text = render_report(
        fake_results(rates=None, metrics=None, y_true=None, y_scores={}, scores=None, segment_col=None)
    )
    parsed = parse(text)
    assert parsed.text["h2"] == list(SECTIONS)
    assert not any(tag == "img" for tag, _ in parsed.tags)
    notes = " ".join(parsed.text["p"])
    assert "No churn-rate history" in notes and "No customers were scored" in notes


def test_without_segment_revenue_is_by_tier():
    text = render_report(fake_results(segment_col=None, rates=None, y_true=None, y_scores={}))
    rows = _rows(text, "Revenue at risk by risk_tier")
    assert [(r[0], r[2]) for r in rows] == [("high", "302.00"), ("medium", "75.00"), ("low", "5.50")]


def test_write_report_refuses_to_overwrite(tmp_path, monkeypatch):
    import churnrisk.report as report

    light = fake_results(rates=None, y_true=None, y_scores={}, scores=None)  # no pictures: fast
    monkeypatch.setattr(report, "collect_report", lambda model, store, **kw: light)
    target = tmp_path / "report.html"
    target.write_text("keep me", encoding="utf-8")
    with pytest.raises(ChurnriskError, match="already exists"):
        report.write_report(None, None, target)
    assert target.read_text(encoding="utf-8") == "keep me"
    report.write_report(None, None, target, overwrite=True)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind


# --- a real browser ------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
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


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    command = [CHROMIUM or "chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    from matplotlib.image import imread

    html_file = tmp_path / "report.html"
    html_file.write_text(render_report(fake_results()), encoding="utf-8")
    screenshot = tmp_path / "report.png"

    shot = chromium(
        f"--screenshot={screenshot}", "--window-size=1280,4000", html_file.as_uri(), profile=tmp_path / "p1"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (4000, 1280)
    # Not blank: many distinct colours, and dark (text) pixels in the top part of the page.
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 100
    assert (pixels[:300, :, :3].mean(axis=2) < 0.3).sum() > 500

    dom = chromium("--dump-dom", html_file.as_uri(), profile=tmp_path / "p2")
    assert dom.returncode == 0, dom.stderr[-2000:]
    headings = [h.strip() for h in re.findall(r"<h2>(.*?)</h2>", dom.stdout)]
    assert headings == list(SECTIONS)
    assert dom.stdout.count("<img ") == 7


# --- command line -----------------------------------------------------------------------------------


@pytest.fixture
def tiny_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "customers.csv").write_text("customer_id\n1\n2\n", encoding="utf-8")
    (folder / "orders.csv").write_text(
        "customer_id,ordered_at,amount\n1,2024-01-05,10\n2,2024-02-01,20\n", encoding="utf-8"
    )
    return folder


@pytest.fixture
def fake_collect(monkeypatch):
    """Replace the data collection (model, scoring) by the known results; record what it was given."""
    import churnrisk.report as report

    calls = []

    def collect(model, store, **options):
        calls.append((model, store, options))
        return fake_results(rates=None, y_true=None, y_scores={})

    monkeypatch.setattr(report, "collect_report", collect)
    monkeypatch.setattr(
        "churnrisk.modelfile.load_model", lambda path, trust_pickle: ("loaded", path, trust_pickle)
    )
    return calls


def run_cli(*args: str):
    from typer.testing import CliRunner

    from churnrisk.cli import app

    return CliRunner().invoke(app, list(args))


def test_cli_writes_the_report(tmp_path, tiny_folder, fake_collect):
    out = tmp_path / "report.html"
    result = run_cli(
        "report", "model.skops", str(tiny_folder), "-o", str(out), "--as-of", "2024-03-01", "--top", "3"
    )
    assert result.exit_code == 0, result.output
    assert "Report written to" in result.stdout
    assert parse(out.read_text(encoding="utf-8")).text["h2"] == list(SECTIONS)
    ((model, store, options),) = fake_collect
    assert model == ("loaded", Path("model.skops"), False) and "orders" in store
    assert options == {"as_of": pd.Timestamp("2024-03-01").to_pydatetime(), "top_n": 3}


def test_cli_refuses_to_overwrite(tmp_path, tiny_folder, fake_collect):
    out = tmp_path / "report.html"
    out.write_text("keep me", encoding="utf-8")
    result = run_cli("report", "model.skops", str(tiny_folder), "-o", str(out))
    assert result.exit_code == 1
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert "Traceback" not in result.output
    assert out.read_text(encoding="utf-8") == "keep me"
    assert fake_collect == []  # refused before any work


def test_cli_bad_data_is_a_clear_error(tmp_path, tiny_folder, fake_collect):
    (tiny_folder / "orders.csv").write_text(
        "customer_id,ordered_at,amount\n1,2024-01-05,-10\n", encoding="utf-8"
    )
    result = run_cli("report", "model.skops", str(tiny_folder), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    assert "orders.amount" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def test_cli_missing_model_is_a_clear_error(tmp_path, tiny_folder):
    result = run_cli("report", str(tmp_path / "none.skops"), str(tiny_folder), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_cli_needs_an_output(tiny_folder):
    result = run_cli("report", "model.skops", str(tiny_folder))
    assert result.exit_code == 2


# --- helpers of the data collection ---------------------------------------------------------------------


def test_metrics_frame_puts_the_model_first_then_baselines():
    from churnrisk.report import metrics_frame

    metrics = {"n": 100, "roc_auc": 0.8, "extra": 1.5}
    baselines = {"recency": {"roc_auc": 0.6, "n": 100}, "bgnbd": {"roc_auc": 0.7, "brier": None}}
    expected = pd.DataFrame(
        {
            "roc_auc": [0.8, 0.6, 0.7],
            "brier": [np.nan, np.nan, np.nan],
            "n": pd.array([100, 100, None], dtype="Int64"),
            "extra": [1.5, np.nan, np.nan],
        },
        index=["model", "recency", "bgnbd"],
    )
    pd.testing.assert_frame_equal(metrics_frame(metrics, baselines), expected)
    assert metrics_frame(None) is None and metrics_frame({}) is None


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["customer_id", "churn_probability", "risk_tier", "plan", "segment"], "segment"),
        (["customer_id", "churn_probability", "as_of", "model", "country", "plan"], "country"),
        (
            ["customer_id", "churn_probability", "risk_tier", "revenue_at_risk", "reasons", "as_of", "model"],
            None,
        ),
    ],
)
def test_segment_column(columns, expected):
    from churnrisk.report import segment_column

    assert segment_column(pd.DataFrame(columns=columns)) == expected


# --- the real modules -----------------------------------------------------------------------------------

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "demo-subscription.skops"


@pytest.mark.slow
@pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"the default model {DEFAULT_MODEL} is not there")
def test_collect_report_with_the_default_model(demo_store):
    import warnings

    from churnrisk.modelfile import ModelVersionWarning
    from churnrisk.report import collect_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelVersionWarning)  # a model from other library versions warns
        results = collect_report(DEFAULT_MODEL, demo_store, top_n=10)
    scores = results.scores
    assert len(scores) > 0 and scores["churn_probability"].is_monotonic_decreasing
    assert results.as_of == scores["as_of"].iloc[0]
    assert results.segment_col == "segment"
    assert list(results.metrics.index)[:3] == ["model", "historical_rate", "recency"]
    assert set(results.y_scores) == set(results.metrics.index)
    n = int(results.metrics.loc["model", "n"])
    assert len(results.y_true) == n and all(len(s) == n for s in results.y_scores.values())
    assert results.metrics.loc["model", "base_rate"] == pytest.approx(np.mean(results.y_true))
    assert results.rates["period_end"].max() <= results.as_of
    page = render_report(results)
    assert parse(page).text["h2"] == list(SECTIONS)
    assert page.count("<img ") == 7


def test_no_curves_when_every_outcome_is_the_same():
    results = fake_results(rates=None, scores=None, y_true=np.zeros(200, dtype=int))
    text = render_report(results)
    assert "Every evaluation row has the same outcome" in text
    assert "<img " not in text
    assert _rows(text, "Model and baselines on the same customers")[0][0] == "model"
