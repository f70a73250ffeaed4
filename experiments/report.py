"""`report.html`: the experiment's verdict, tables and two charts, one self-contained page.

Charts are inline SVG drawn here (no script, no CDN: the page opens offline and nothing in
it runs). Every string that comes from data (experiment and variant names, metric names)
is HTML-escaped where it is written. The page fits a 1280 px screen: charts scale with
their `viewBox`, long names wrap, and a table wider than the page scrolls inside its own
box, never the page.
"""
from __future__ import annotations

import math
import numbers
from html import escape

import pandas as pd

from recsys.experiments.analysis import Comparison, GuardrailCheck

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
SIGNIFICANT, NOT_SIGNIFICANT = "#2e7d32", "#555"
CHART_WIDTH = 1000
"""Width of both charts' coordinate space; the page scales them to its column."""
LABEL_CHARS = 42
"""Longer comparison labels are cut in the chart (the full text is the row's tooltip)."""
STYLE = (
    "*{box-sizing:border-box}"
    "body{font-family:sans-serif;margin:0 auto;padding:1em 2em;max-width:1200px}"
    "h1{overflow-wrap:anywhere}"
    ".scroll{overflow-x:auto;max-width:100%;margin:.5em 0}"
    "table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#f4f4f4;white-space:nowrap}"
    "td.text{text-align:left;max-width:40em;overflow-wrap:anywhere}"
    "svg.chart{display:block;width:100%;max-width:1000px;height:auto}"
    ".legend{display:flex;flex-wrap:wrap;gap:.3em 1.5em;font-size:.9em;margin:.3em 0}"
    ".legend span{overflow-wrap:anywhere}"
    ".swatch{display:inline-block;width:.8em;height:.8em;border-radius:50%;"
    "margin-right:.3em;vertical-align:middle}"
    ".verdict{font-size:1.3em;overflow-wrap:anywhere}.bad{color:#b00;font-weight:bold}"
)


def report_html(summary: dict, daily: pd.DataFrame) -> str:
    verdict = summary["verdict"]
    winner = summary.get("winner")
    headline = f"{escape(verdict)}" + (f": <b>{escape(winner)}</b>" if winner else "")
    comparisons = [Comparison.model_validate(c) for c in summary["comparisons"]]
    order = list(summary["variants"])
    sections = [
        f"<h1>Experiment {escape(summary['experiment'])}</h1>",
        f"<p class=verdict>Verdict: {headline}</p>",
        _srm(summary["srm"]),
        "<h2>Comparisons</h2>",
        "<p>Relative lift of each variant with its confidence interval (bar), zero marked; "
        "green where significant. p-values after Holm's correction across all comparisons "
        "(sequential tests: the alpha-spending boundary).</p>",
        lift_chart(comparisons), _comparisons(comparisons),
        "<h2>Daily CTR</h2>", daily_chart(daily, order),
        "<h2>Variants</h2>", _variants(summary["variants"]),
        "<h2>Guardrails (non-inferiority)</h2>", _guardrails(
            [GuardrailCheck.model_validate(g) for g in summary["guardrails"]]),
        "<h2>Power</h2>", _table([summary["power"]]),
        "<h2>Data</h2>", _table([{k: (", ".join(v) if isinstance(v, list) else v)
                                  for k, v in summary["data"].items()
                                  if not isinstance(v, dict)}]),
    ]
    if summary.get("sequential"):
        sections += ["<h2>Sequential test</h2>", _table([summary["sequential"]])]
    return ("<!doctype html><html><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width\">"
            f"<title>Experiment {escape(summary['experiment'])}</title>"
            f"<style>{STYLE}</style></head><body>" + "\n".join(sections) + "</body></html>")


def _srm(srm: dict) -> str:
    if srm.get("p_value") is None:
        return "<p>Sample ratio: no users yet.</p>"
    text = f"Sample-ratio check: p = {srm['p_value']:.4g}"
    if srm["flagged"]:
        return f"<p class=bad>{text} - the split is not the configured one: do not trust " \
               "any result until the assignment or the logging is fixed.</p>"
    return f"<p>{text} (flagged below 0.001).</p>"


def _variants(variants: dict) -> str:
    """One column per variant, one row per measure: as many columns as variants, so the
    table stays narrow however many measures there are."""
    measures = list(dict.fromkeys(k for values in variants.values() for k in values))
    return _table([{"measure": measure, **{label: values.get(measure)
                                           for label, values in variants.items()}}
                   for measure in measures])


def _comparisons(comparisons: list[Comparison]) -> str:
    keep = ("variant", "against", "metric", "lift", "ci_low", "ci_high", "p_value",
            "p_value_raw", "significant", "cuped", "chi_square_p", "welch_p")
    return _table([{k: getattr(c, k) for k in keep} for c in comparisons])


def _guardrails(guardrails: list[GuardrailCheck]) -> str:
    return _table([g.model_dump() for g in guardrails]) if guardrails else \
        "<p>None configured.</p>"


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>No data.</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>"
                   for row in rows)
    return f"<div class=scroll><table><tr>{head}</tr>{body}</table></div>"


def _cell(value) -> str:
    if value is None:
        return "<td>-</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, float):
        return f"<td>{value:.4g}</td>"
    if isinstance(value, numbers.Integral):
        return f"<td>{value}</td>"
    return f"<td class=text>{escape(str(value))}</td>"


def _percent(value: float, digits: int = 1) -> str:
    return f"{value:+.{digits}%}" if value else "0%"


def _ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    rough = (high - low) / count
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    first = math.ceil(low / step - 1e-9)
    return [round(n * step, 12) for n in range(first, math.floor(high / step + 1e-9) + 1)]


def _digits(ticks: list[float]) -> int:
    """Decimals a percent label needs to tell the ticks apart."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    return max(0, -math.floor(math.log10(step * 100) + 1e-9))


def lift_chart(comparisons: list[Comparison]) -> str:
    """A forest plot: per comparison a row with the relative lift as a point, its confidence
    interval as a bar with end caps, and the figures written at the right; a zero line and
    a labelled lift axis below. Rows without an interval say why instead of drawing one."""
    if not comparisons:
        return "<p>No comparisons.</p>"
    values = [v for c in comparisons for v in (c.lift, c.ci_low, c.ci_high)
              if v is not None] + [0.0]
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or 0.05
    low, high = low - pad, high + pad
    left, right, row_height, top = 330, 210, 26, 10
    plot = CHART_WIDTH - left - right
    height = top + row_height * len(comparisons) + 36
    axis_y = top + row_height * len(comparisons)

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * plot

    parts = []
    ticks = _ticks(low, high)
    digits = _digits(ticks)
    for tick in ticks:
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{axis_y}" '
                     'stroke="#e4e4e4"/>'
                     f'<text x="{x(tick):.1f}" y="{axis_y + 16}" font-size="12" '
                     f'text-anchor="middle">{_percent(tick, digits)}</text>')
    parts.append(f'<line class="zero" x1="{x(0):.1f}" y1="{top - 4}" x2="{x(0):.1f}" '
                 f'y2="{axis_y + 4}" stroke="#333" stroke-dasharray="4 3"/>'
                 f'<text x="{left + plot / 2:.1f}" y="{axis_y + 32}" font-size="12" '
                 'text-anchor="middle">relative lift</text>')
    for i, c in enumerate(comparisons):
        parts.append(_lift_row(c, top + row_height * i + row_height / 2, x))
    return (f'<svg class="chart lift-chart" viewBox="0 0 {CHART_WIDTH} {height}" '
            f'role="img" aria-label="relative lift per comparison with its confidence '
            f'interval">{"".join(parts)}</svg>')


def _lift_row(c: Comparison, y: float, x) -> str:
    label = f"{c.variant} vs {c.against}: {c.metric}"
    shown = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
    colour = SIGNIFICANT if c.significant else NOT_SIGNIFICANT
    parts = [f'<title>{escape(label)}</title>',
             f'<text x="4" y="{y + 4:.1f}" font-size="13">{escape(shown)}</text>']
    if c.lift is None:
        figures = "no estimate"
    elif c.ci_low is None or c.ci_high is None:
        figures = f"{_percent(c.lift)} (no interval)"
    else:
        figures = f"{_percent(c.lift)} [{_percent(c.ci_low)}, {_percent(c.ci_high)}]"
        x_low, x_high = x(c.ci_low), x(c.ci_high)
        parts.append(f'<line class="ci" x1="{x_low:.1f}" y1="{y:.1f}" x2="{x_high:.1f}" '
                     f'y2="{y:.1f}" stroke="{colour}" stroke-width="2.5"/>')
        parts += [f'<line x1="{end:.1f}" y1="{y - 5:.1f}" x2="{end:.1f}" y2="{y + 5:.1f}" '
                  f'stroke="{colour}" stroke-width="2"/>' for end in (x_low, x_high)]
    if c.lift is not None:
        parts.append(f'<circle class="lift" cx="{x(c.lift):.1f}" cy="{y:.1f}" r="5" '
                     f'fill="{colour}"/>')
    parts.append(f'<text x="{CHART_WIDTH - 4}" y="{y + 4:.1f}" font-size="13" '
                 f'text-anchor="end" fill="{colour}">{figures}</text>')
    return (f'<g class="comparison" data-label="{escape(label)}">' + "".join(parts) + "</g>")


def daily_chart(daily: pd.DataFrame, order: list[str]) -> str:
    """CTR per day and variant: a marker for every day (its value as the tooltip, and
    written beside it when the test has run one day), joined by a line from two days on."""
    if daily.empty:
        return "<p>No exposures yet.</p>"
    days = sorted(daily["day"].unique())
    variants = [v for v in order if v in set(daily["variant"])] + \
        sorted(set(daily["variant"]) - set(order), key=str)
    peak = float(daily["ctr"].max()) or 0.01
    ticks = _ticks(0.0, peak, 4)
    if ticks[-1] < peak * 1.05:  # one more tick above the highest value
        ticks.append(round(2 * ticks[-1] - ticks[-2], 12) if len(ticks) > 1 else peak)
    top_value, digits = ticks[-1], _digits(ticks)
    width, height, left, right, top, bottom = CHART_WIDTH, 260, 60, 50, 20, 35
    plot_w, plot_h = width - left - right, height - top - bottom
    single = len(days) == 1

    def x(day_index: int, variant_index: int) -> float:
        if single:  # one day: the variants side by side around the middle
            return left + plot_w / 2 + (variant_index - (len(variants) - 1) / 2) * 70
        return left + day_index / (len(days) - 1) * plot_w

    def y(ctr: float) -> float:
        return top + plot_h - ctr / top_value * plot_h

    parts = [f'<line x1="{left}" y1="{y(t):.1f}" x2="{width - right}" y2="{y(t):.1f}" '
             f'stroke="#e4e4e4"/><text x="{left - 6}" y="{y(t) + 4:.1f}" font-size="12" '
             f'text-anchor="end">{t:.{digits}%}</text>' for t in ticks]
    step = max(1, math.ceil(len(days) / 10))
    for i in range(0, len(days), step):
        at = left + plot_w / 2 if single else x(i, 0)
        parts.append(f'<text x="{at:.1f}" y="{height - 12}" font-size="12" '
                     f'text-anchor="middle">{pd.Timestamp(days[i]).date()}</text>')
    index = {day: i for i, day in enumerate(days)}
    legend = []
    for n, variant in enumerate(variants):
        colour = COLOURS[n % len(COLOURS)]
        frame = daily[daily["variant"] == variant].sort_values("day")
        points = [(x(index[d], n), y(float(c)), d, float(c), int(e), int(k)) for d, c, e, k in
                  zip(frame["day"], frame["ctr"], frame["exposures"], frame["clicked"])]
        if len(points) > 1:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                         + " ".join(f"{px:.1f},{py:.1f}" for px, py, *_ in points) + '"/>')
        for px, py, day, ctr, shown, clicked in points:
            tip = escape(f"{variant} {pd.Timestamp(day).date()}: CTR {ctr:.2%} "
                         f"({clicked} of {shown} lists)")
            parts.append(f'<circle class="day-point" data-variant="{escape(str(variant))}" '
                         f'cx="{px:.1f}" cy="{py:.1f}" r="4.5" fill="{colour}">'
                         f'<title>{tip}</title></circle>')
            if single:
                parts.append(f'<text x="{px:.1f}" y="{py - 10:.1f}" font-size="12" '
                             f'text-anchor="middle" fill="{colour}">{ctr:.2%}</text>')
        legend.append(f'<span><i class=swatch style="background:{colour}"></i>'
                      f'{escape(str(variant))}</span>')
    return (f'<div class=legend>{"".join(legend)}</div>'
            f'<svg class="chart daily-chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="daily CTR per variant">{"".join(parts)}</svg>')
