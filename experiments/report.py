"""`report.html`: the experiment's verdict, tables and two plots, one self-contained page.

Plots are inline SVG drawn here (no script, no CDN: the page opens offline and nothing in
it runs). Every string that comes from data (experiment and variant names, metric names)
is HTML-escaped where it is written.
"""
from __future__ import annotations

from html import escape

import pandas as pd

from recsys.experiments.analysis import Comparison, GuardrailCheck

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")


def report_html(summary: dict, daily: pd.DataFrame) -> str:
    verdict = summary["verdict"]
    winner = summary.get("winner")
    headline = f"{escape(verdict)}" + (f": <b>{escape(winner)}</b>" if winner else "")
    comparisons = [Comparison.model_validate(c) for c in summary["comparisons"]]
    sections = [
        f"<h1>Experiment {escape(summary['experiment'])}</h1>",
        f"<p class=verdict>Verdict: {headline}</p>",
        _srm(summary["srm"]),
        "<h2>Variants</h2>", _variants(summary["variants"]),
        "<h2>Comparisons</h2>",
        "<p>Relative lift with its confidence interval; p-values after Holm's correction "
        "across all comparisons (sequential tests: the alpha-spending boundary).</p>",
        _forest(comparisons), _comparisons(comparisons),
        "<h2>Guardrails (non-inferiority)</h2>", _guardrails(
            [GuardrailCheck.model_validate(g) for g in summary["guardrails"]]),
        "<h2>Daily CTR</h2>", _daily(daily),
        "<h2>Power</h2>", _table([summary["power"]]),
        "<h2>Data</h2>", _table([{k: (", ".join(v) if isinstance(v, list) else v)
                                  for k, v in summary["data"].items()
                                  if not isinstance(v, dict)}]),
    ]
    if summary.get("sequential"):
        sections += ["<h2>Sequential test</h2>", _table([summary["sequential"]])]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1100px}"
             "table{border-collapse:collapse;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "th{background:#f4f4f4}.verdict{font-size:1.3em}.bad{color:#b00;font-weight:bold}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Experiment "
            f"{escape(summary['experiment'])}</title><style>{style}</style></head><body>"
            + "\n".join(sections) + "</body></html>")


def _srm(srm: dict) -> str:
    if srm.get("p_value") is None:
        return "<p>Sample ratio: no users yet.</p>"
    text = f"Sample-ratio check: p = {srm['p_value']:.4g}"
    if srm["flagged"]:
        return f"<p class=bad>{text} - the split is not the configured one: do not trust " \
               "any result until the assignment or the logging is fixed.</p>"
    return f"<p>{text} (flagged below 0.001).</p>"


def _variants(variants: dict) -> str:
    rows = [{"variant": label, **values} for label, values in variants.items()]
    return _table(rows)


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
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in columns)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _forest(comparisons: list[Comparison]) -> str:
    """Lift and interval per comparison on one axis, zero marked."""
    rows = [(c, c.lift) for c in comparisons if c.lift is not None]
    if not rows:
        return ""
    values = [v for c, lift in rows for v in (lift, c.ci_low, c.ci_high)
              if v is not None] + [0.0]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    width, left, row_height = 760, 260, 22
    height = row_height * len(rows) + 30

    def x(value: float) -> float:
        return left + (value - low) / span * (width - left - 20)

    parts = [f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - 20}" '
             'stroke="#999" stroke-dasharray="4"/>']
    for i, (c, lift) in enumerate(rows):
        y = 15 + i * row_height
        colour = "#59a14f" if c.significant else "#555"
        label = escape(f"{c.variant} vs {c.against}: {c.metric}")
        parts.append(f'<text x="5" y="{y + 4}" font-size="12">{label}</text>')
        if c.ci_low is not None and c.ci_high is not None:
            parts.append(f'<line x1="{x(c.ci_low):.1f}" y1="{y}" x2="{x(c.ci_high):.1f}"'
                         f' y2="{y}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(lift):.1f}" cy="{y}" r="4" fill="{colour}"/>')
    parts.append(f'<text x="{left}" y="{height - 4}" font-size="11">{low:+.1%}</text>'
                 f'<text x="{width - 70}" y="{height - 4}" font-size="11">{high:+.1%}</text>')
    return (f'<svg width="{width}" height="{height}" role="img" '
            f'aria-label="relative lift per comparison">{"".join(parts)}</svg>')


def _daily(daily: pd.DataFrame) -> str:
    """CTR per day and variant, one polyline each."""
    if daily.empty:
        return "<p>No exposures yet.</p>"
    days = sorted(daily["day"].unique())
    top = float(daily["ctr"].max()) or 1.0
    width, height, pad = 760, 240, 40

    def point(day_index: int, ctr: float) -> str:
        x = pad + day_index / max(len(days) - 1, 1) * (width - 2 * pad)
        y = height - pad - ctr / top * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    index = {day: i for i, day in enumerate(days)}
    parts, legend = [], []
    for n, (variant, frame) in enumerate(daily.groupby("variant")):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(point(index[d], c) for d, c in zip(frame["day"], frame["ctr"]))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"/>')
        legend.append(f'<text x="{pad + n * 120}" y="15" fill="{colour}" font-size="12">'
                      f'{escape(str(variant))}</text>')
    axis = (f'<text x="2" y="{pad}" font-size="11">{top:.3f}</text>'
            f'<text x="2" y="{height - pad}" font-size="11">0</text>'
            f'<text x="{pad}" y="{height - 10}" font-size="11">'
            f'{escape(str(pd.Timestamp(days[0]).date()))}</text>'
            f'<text x="{width - pad - 60}" y="{height - 10}" font-size="11">'
            f'{escape(str(pd.Timestamp(days[-1]).date()))}</text>')
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="daily CTR">'
            + "".join(legend + parts) + axis + "</svg>")
