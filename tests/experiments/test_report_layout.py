"""report.html as drawn: a one-day, three-arm test's page in headless Chromium at 1280 px has
one interval bar per comparison placed by its bounds, one daily-CTR marker per variant, and
no horizontal scrolling, long hostile names included; without a browser, every name is
escaped and the charts' coordinates follow the figures."""
import json
import re
import xml.etree.ElementTree as ET

import pytest

from recsys.experiments.analysis import AnalysisInput, analyze
from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition, parse_variants
from recsys.experiments.outcomes import user_outcomes
from recsys.experiments.report import _ticks, report_html
from tests.experiments.shop_simulation import START, simulate

HOSTILE = "<script>alert(1)</script>"
LONG = HOSTILE + '-" onmouseover="alert(2)-a-challenger-name-far-too-long-for-any-table-cell'


@pytest.fixture(scope="module")
def one_day():
    """A realistic one-day test (3 arms, 3 metrics: 7 comparisons) - its summary as
    summary.json holds it, and its daily CTR."""
    d = ExperimentDefinition(
        name="seeds-ab", starts_at=START.to_pydatetime(), minimum_users=100,
        variants=parse_variants("control=popularity:30,a=champion:35,b=challenger:35"),
        secondary_metrics=["conversion", "revenue_per_user"])
    exposures, events, pre = simulate(d, 3000, ctr={"control": 0.1, "a": 0.1, "b": 0.2},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=6, days=1)
    outcomes = user_outcomes(exposures, events, START, d.attribution_hours, pre)
    summary = analyze(AnalysisInput(d, outcomes, Assigner(d).expected_shares()))
    return json.loads(json.dumps(summary)), outcomes.daily


def renamed(summary: dict, daily, old: str, new: str):
    """The same test with a variant named `new`, and the experiment named HOSTILE."""
    text = json.dumps(summary).replace(json.dumps(old), json.dumps(new))
    summary = {**json.loads(text), "experiment": HOSTILE}
    return summary, daily.assign(variant=daily["variant"].replace({old: new}))


def svg(page: str, kind: str) -> ET.Element:
    return ET.fromstring(re.search(rf'<svg class="chart {kind}".*?</svg>', page, re.S)[0])


def test_every_name_is_escaped(one_day):
    summary, daily = renamed(*one_day, "b", LONG)
    summary["comparisons"][0]["metric"] = HOSTILE
    page = report_html(summary, daily)
    assert "<script" not in page and 'onmouseover="' not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 10
    assert "Experiment &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page


def test_the_lift_chart_places_each_interval_by_its_bounds(one_day):
    summary, daily = one_day
    chart = svg(report_html(summary, daily), "lift-chart")
    rows = chart.findall("g[@class='comparison']")
    comparisons = summary["comparisons"]
    assert [r.get("data-label") for r in rows] == [
        f"{c['variant']} vs {c['against']}: {c['metric']}" for c in comparisons]
    assert len(rows) == 7
    zero = float(chart.find("line[@class='zero']").get("x1"))
    for row, c in zip(rows, comparisons):
        bar = row.find("line[@class='ci']")
        low, high = float(bar.get("x1")), float(bar.get("x2"))
        point = float(row.find("circle[@class='lift']").get("cx"))
        assert low < point < high
        assert (low < zero < high) == (c["ci_low"] < 0 < c["ci_high"])
        assert f"{c['lift']:+.1%} [{c['ci_low']:+.1%}, {c['ci_high']:+.1%}]" in \
            "".join(row.itertext())


def test_a_comparison_without_an_interval_says_so_instead_of_drawing_one(one_day):
    summary, daily = json.loads(json.dumps(one_day[0])), one_day[1]
    summary["comparisons"][0].update(ci_low=None, ci_high=None)
    summary["comparisons"][1].update(lift=None, ci_low=None, ci_high=None)
    rows = svg(report_html(summary, daily), "lift-chart").findall("g")
    assert "(no interval)" in "".join(rows[0].itertext())
    assert rows[0].find("line[@class='ci']") is None
    assert rows[0].find("circle[@class='lift']") is not None
    assert "no estimate" in "".join(rows[1].itertext())
    assert rows[1].find("circle") is None


def test_a_one_day_test_draws_one_valued_marker_per_variant(one_day):
    summary, daily = one_day
    assert daily["day"].nunique() == 1
    chart = svg(report_html(summary, daily), "daily-chart")
    markers = chart.findall("circle[@class='day-point']")
    assert [m.get("data-variant") for m in markers] == ["control", "a", "b"]
    ctr = daily.set_index("variant")["ctr"]
    heights = {m.get("data-variant"): float(m.get("cy")) for m in markers}
    assert sorted(heights, key=heights.get) == sorted(ctr.index, key=lambda v: -ctr[v])
    labels = "".join(chart.itertext())
    assert all(f"{ctr[v]:.2%}" in labels for v in ("control", "a", "b"))


def test_axis_ticks_are_round_values_covering_the_range():
    assert _ticks(-0.5, 1.6) == [-0.5, 0.0, 0.5, 1.0, 1.5]
    assert _ticks(-0.02, 0.03) == [-0.02, -0.01, 0.0, 0.01, 0.02, 0.03]
    assert _ticks(0.0, 0.0123, 4) == [0.0, 0.005, 0.01]


MEASURE = """(() => {
  const root = document.documentElement, box = e => e.getBoundingClientRect();
  const centre = e => (box(e).left + box(e).right) / 2;
  const rows = [...document.querySelectorAll('svg.lift-chart g.comparison')].map(g => ({
    label: g.dataset.label, low: box(g.querySelector('line.ci')).left,
    high: box(g.querySelector('line.ci')).right, point: centre(g.querySelector('circle.lift'))}));
  const daily = document.querySelector('svg.daily-chart'), area = box(daily);
  const markers = [...daily.querySelectorAll('circle.day-point')].map(c => ({
    variant: c.dataset.variant, x: centre(c), y: (box(c).top + box(c).bottom) / 2,
    inside: box(c).left >= area.left && box(c).right <= area.right && box(c).width > 0}));
  const right = Math.max(...[...document.querySelectorAll('.scroll, svg, h1, p, table')]
    .filter(e => !e.closest('.scroll') || e.classList.contains('scroll'))
    .map(e => box(e).right));
  return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, right,
          zero: centre(document.querySelector('svg.lift-chart line.zero')), rows, markers,
          scripts: document.scripts.length, h1: document.querySelector('h1').textContent};
})()"""


@pytest.mark.integration  # Debian's Chromium
def test_drawn_at_1280_px_the_page_fits_and_the_charts_follow_the_figures(one_day, tmp_path):
    from tests.streaming.test_sdk_browser import DevTools

    summary, daily = one_day
    pages = {"plain": (summary, daily), "hostile": renamed(summary, daily, "b", LONG)}
    browser = DevTools(tmp_path / "profile")
    drawn = {}
    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                     deviceScaleFactor=1, mobile=False)
        for name, (s, d) in pages.items():
            page = tmp_path / f"{name}.html"
            page.write_text(report_html(s, d), encoding="utf-8")
            browser.call("Page.navigate", url=page.as_uri())
            browser.wait_for(f"document.readyState === 'complete' && "
                             f"location.href === {page.as_uri()!r}")
            drawn[name] = browser.evaluate(MEASURE)
    finally:
        browser.close()
    for name, page in drawn.items():  # no horizontal scrolling, long names or not
        assert page["scrollWidth"] <= page["clientWidth"] <= 1280, name
        assert page["right"] <= page["clientWidth"], name
        assert page["scripts"] == 0, name
    assert drawn["hostile"]["h1"] == f"Experiment {HOSTILE}"
    plain = drawn["plain"]
    comparisons = summary["comparisons"]
    assert [r["label"] for r in plain["rows"]] == [
        f"{c['variant']} vs {c['against']}: {c['metric']}" for c in comparisons]
    # screen x is one increasing linear function of the lift for every bound and point
    pairs = [(0.0, plain["zero"])] + [
        pair for row, c in zip(plain["rows"], comparisons)
        for pair in ((c["ci_low"], row["low"]), (c["lift"], row["point"]),
                     (c["ci_high"], row["high"]))]
    (v0, x0), (v1, x1) = min(pairs), max(pairs)
    scale = (x1 - x0) / (v1 - v0)
    assert scale > 0
    assert all(abs(x0 + (v - v0) * scale - x) < 2.5 for v, x in pairs)  # stroke caps: ~1px
    for row in plain["rows"]:
        assert row["low"] < row["point"] < row["high"]
    markers = plain["markers"]
    assert [m["variant"] for m in markers] == ["control", "a", "b"]
    assert all(m["inside"] for m in markers)
    ctr = daily.set_index("variant")["ctr"]
    by_height = sorted(markers, key=lambda m: m["y"])
    assert by_height == sorted(markers, key=lambda m: -ctr[m["variant"]])
