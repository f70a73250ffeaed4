"""Generated documentation pages: `python -m recsys.tools.docs_pages` (or `make docs`)
rewrites docs/configuration.md from `Settings`, docs/benchmarks.md from
benchmarks/results/*.json and the OpenAPI documents docs/openapi/*.json from the collector's
and serving's code. A test fails when one is out of date."""
from __future__ import annotations

import json
from pathlib import Path

from recsys.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
ROW_COLUMNS = ("model", "rmse", "mae", "ndcg_at_10", "ndcg_at_10_low", "ndcg_at_10_high",
               "precision_at_10", "recall_at_10", "map_at_10", "coverage_at_10",
               "session_hit_rate_at_20", "session_mrr_at_20", "session_cases",
               "precision_at_20", "mrr_at_10", "mrr_at_20", "hit_at_10", "hit_at_20",
               "ndcg_at_20", "cases", "ms_per_prediction", "new_item_hit_rate_at_10",
               "new_item_hit_rate_at_10_random",
               "fit_seconds", "users_per_second", "ms_per_session")


def configuration_page() -> str:
    lines = ["# Configuration", "",
             "Generated from `recsys.core.settings.Settings` by `make docs`; do not edit.",
             "Every setting is an environment variable with the prefix `RECSYS_`; code reads "
             "them only through `Settings` (`load_settings()` at the edge, passed down).", "",
             "| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        variable = f"`RECSYS_{name.upper()}`"
        for other in getattr(field.validation_alias, "choices", [])[1:]:
            variable += f" (or `{other}`)"  # a conventional variable read when it is not set
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        meaning = " ".join((field.description or "").split())
        lines.append(f"| {variable} | {shown} | {_cell(meaning)} |")
    lines += ["", "Derived values: the lake is `RECSYS_LAKE_URI` or `<state_dir>/lake`; MLflow "
              "is `RECSYS_MLFLOW_TRACKING_URI`, else `MLFLOW_TRACKING_URI`, else "
              "`sqlite:///<state_dir>/mlflow.db`, and its registry the same store unless "
              "`RECSYS_MLFLOW_TRACKING_URI` is unset and `MLFLOW_REGISTRY_URI` is set.", ""]
    return "\n".join(lines)


def benchmarks_page() -> str:
    lines = ["# Benchmarks", "",
             "Generated from `benchmarks/results/*.json` by `make docs`; do not edit. Each "
             "result is written by `recsys bench <area>` (`make bench` runs all) with the "
             "machine and date it ran on; the area pages (data, serving, ...) say what each "
             "benchmark measures.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        machine = result.get("machine", {})
        lines += [f"## {path.stem}", "",
                  f"{result.get('date', '?')[:10]}, {machine.get('cpus', '?')} x "
                  f"{machine.get('cpu_model', '?')}, {machine.get('memory_gib', '?')} GiB, "
                  f"Python {machine.get('python', '?')}", ""]
        rows = result.get("rows")
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            columns = [c for c in ROW_COLUMNS if any(c in r for r in rows)]
            lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_value(r.get(c, "")) for c in columns) + " |"
                      for r in rows]
            lines.append("")
        figures = [(k, v) for k, v in _flatten(result)
                   if not k.startswith(("machine", "date", "area", "rows", "published"))]
        if figures:
            lines += ["| figure | value |", "|---|---|"]
            lines += [f"| {k} | {_cell(_value(v))} |" for k, v in figures]
            lines.append("")
    return "\n".join(lines)


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            yield prefix, ", ".join(_value(v) for v in value[:12]) + (" ..." if len(value) > 12
                                                                      else "")
    else:
        yield prefix, value


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def collector_openapi() -> str:
    from recsys.streaming.openapi import collector_document

    return json.dumps(collector_document(), indent=2) + "\n"


def serving_openapi() -> str:
    from recsys.serving.openapi import serving_document

    return json.dumps(serving_document(), indent=2) + "\n"


PAGES = {"configuration.md": configuration_page, "benchmarks.md": benchmarks_page,
         "openapi/collector.json": collector_openapi, "openapi/serving.json": serving_openapi}


def main() -> None:
    for name, render in PAGES.items():
        (DOCS / name).parent.mkdir(exist_ok=True)
        (DOCS / name).write_text(render())
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
