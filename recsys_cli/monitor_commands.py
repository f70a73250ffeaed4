"""`recsys monitor drift`: an ad-hoc Evidently drift report between two sets of events."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from components.common.progress import step
from monitoring.config import DriftConfig
from monitoring.drift import run_drift
from monitoring.inputs import load_events


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
    drift.set_defaults(handler=cmd_drift)


def cmd_drift(args: argparse.Namespace) -> int:
    config = DriftConfig(drift_share=args.drift_share, sample_size=args.sample_size)
    with step("monitor drift", reference=args.reference, current=args.current):
        result = run_drift(load_events(args.reference), load_events(args.current), config,
                           {"reference": args.reference, "current": args.current})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.snapshot.save_html(str(out / "report.html"))
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str))
    print(json.dumps({k: result.summary[k] for k in (
        "drift_detected", "drifted_share", "top_drifted_columns")}, indent=2))
    print(f"report: {out / 'report.html'}")
    return 0
