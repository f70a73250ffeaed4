"""`recsys monitor drift`: an ad-hoc Evidently drift report between two sets of events."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.core.progress import step
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.drift import run_drift
from recsys.monitoring.html_report import report_html
from recsys.monitoring.inputs import load_events
from recsys.monitoring.workspace import publish


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("monitor", help="data drift reports (Evidently)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    drift = actions.add_parser(
        "drift", help="compare two sets of events; writes report.html and summary.json",
        description="Events in any supported layout (jsonl, retailrocket, rees46, "
                    "user_events, movielens) or canonical Parquet from the lake.")
    drift.add_argument("--reference", required=True, help="reference events (file or folder)")
    drift.add_argument("--current", required=True, help="current events (file or folder)")
    drift.add_argument("--out", required=True, help="output folder")
    drift.add_argument("--drift-share", type=float, default=0.25,
                       help="declare drift when this share of columns drifted (default 0.25)")
    drift.add_argument("--sample-size", type=int, default=200_000,
                       help="rows sampled per side (default 200000)")
    drift.add_argument("--workspace", default=None,
                       help="also add the report to this Evidently workspace folder")
    drift.set_defaults(handler=cmd_drift)
    run = actions.add_parser("run", help="champion's training window vs the latest days of the "
                             "lake: report to the lake, MLflow, the workspace; tags the champion")
    run.add_argument("--current-days", type=float, default=1.0,
                     help="length of the current window, ending at the newest event (default 1)")
    run.set_defaults(handler=cmd_run)
    ui = actions.add_parser("ui", help="start the Evidently UI over the project's workspace "
                            "(first adding the lake's reports it does not hold yet)")
    ui.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    ui.set_defaults(handler=cmd_ui)


def cmd_drift(args: argparse.Namespace) -> int:
    config = DriftConfig(drift_share=args.drift_share, sample_size=args.sample_size)
    with step("monitor drift", reference=args.reference, current=args.current):
        result = run_drift(load_events(args.reference), load_events(args.current), config,
                           {"reference": args.reference, "current": args.current})
    if args.workspace:
        publish(result.snapshot, args.workspace, name=f"{args.reference} vs {args.current}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text(report_html(result.snapshot), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str))
    print(json.dumps({k: result.summary[k] for k in (
        "drift_detected", "drifted_share", "top_drifted_columns")}, indent=2))
    print(f"report: {out / 'report.html'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from recsys.core.settings import load_settings
    from recsys.monitoring.monitor import monitor

    with step("monitor run"):
        summary = monitor(load_settings(), DriftConfig(), current_days=args.current_days)
    print(json.dumps({k: summary[k] for k in (
        "drift_detected", "drifted_share", "top_drifted_columns", "model_version",
        "reference_window", "current_window", "report_url")}, indent=2))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from recsys.core.data.lake import Lake
    from recsys.core.settings import load_settings
    from recsys.monitoring.ui_server import UI_SECRET_FILE, serve_ui
    from recsys.monitoring.workspace import sync_from_lake

    settings = load_settings()
    workspace = settings.state_dir / "evidently"
    added = sync_from_lake(Lake(settings.lake, settings.s3_endpoint_url), workspace)
    print(f"workspace {workspace}: {added} report(s) added from the lake {settings.lake}")
    print(f"Evidently UI on http://127.0.0.1:{args.port} - open the project "
          "'recsys data drift', then a report in its Reports tab (writes need the secret in "
          f"{settings.monitor_ui_secret_file or settings.state_dir / 'secrets' / UI_SECRET_FILE}"
          " or RECSYS_MONITOR_UI_SECRET)", flush=True)
    serve_ui(settings, str(workspace), args.port)
    return 0
