"""`recsys quarantine replay` and `recsys lake retain`: the lake's upkeep."""
from __future__ import annotations

import argparse
import json

from recsys.cli.data_commands import lake_arg, open_lake
from recsys.core.progress import step
from recsys.core.settings import load_settings

WINDOW_HELP = "ISO date/datetime (UTC) or epoch milliseconds"


def register(commands: argparse._SubParsersAction) -> None:
    quarantine = commands.add_parser("quarantine", help="the lake's refused rows and dead "
                                     "letters")
    actions = quarantine.add_subparsers(dest="action", required=True, metavar="ACTION")
    replay = actions.add_parser(
        "replay", help="judge quarantined rows again with today's rules; move those that pass "
        "to the raw zone",
        description="Re-read every quarantined row (a dead letter with the collector's checks, "
        "a refused JSON line with the JSON Lines reader, a refused event as stored), apply "
        "validate's rules and append the events that pass to the raw zone (idempotent by "
        "event_id), then record those rows as replayed (never examined again). The rest "
        "stays with its reason. Prints a JSON summary.")
    replay.add_argument("--reason", action="append", default=[], metavar="R",
                        help="only rows whose reason (or one of its '; ' parts) starts with R, "
                        "without case: 'collector', 'collector: event_type', 'price out of "
                        "range' (repeat for several; default all)")
    replay.add_argument("--since", default=None, metavar="T",
                        help=f"only rows of T or later (the event's time, a dead letter's "
                        f"receipt; rows with no time are left out), {WINDOW_HELP}")
    replay.add_argument("--dry-run", action="store_true",
                        help="count what would move; write nothing")
    lake_arg(replay)
    replay.set_defaults(handler=cmd_replay)

    lake = commands.add_parser("lake", help="the data lake's retention and size")
    actions = lake.add_subparsers(dest="action", required=True, metavar="ACTION")
    retain = actions.add_parser(
        "retain", help="delete date partitions older than each zone's retention policy",
        description="Per zone (raw, clean, quarantine, request log, reports) delete the whole "
        "date partitions older than RECSYS_RETENTION_<ZONE>_DAYS (unset or 0: kept forever; "
        "today's partition never), then print what went and the lake's size per zone; pushes "
        "the sizes to RECSYS_PUSHGATEWAY_URL when it is set. The monitoring pipeline runs it "
        "daily.")
    retain.add_argument("--dry-run", action="store_true",
                        help="list the partitions that would go; delete nothing")
    lake_arg(retain)
    retain.set_defaults(handler=cmd_retain)



def cmd_replay(args: argparse.Namespace) -> int:
    from recsys.components.replay.replay import ReplayRules, parse_reason, parse_since, replay
    from recsys.streaming.runtime import user_binding

    reasons = tuple(parse_reason(r) for r in args.reason)
    since = parse_since(args.since) if args.since is not None else None
    lake = open_lake(args.lake)
    rules = ReplayRules(binding=user_binding(load_settings()))
    with step("quarantine replay", lake=lake.uri, dry_run=args.dry_run):
        summary = replay(lake, reasons, since, dry_run=args.dry_run, rules=rules)
    print(summary.model_dump_json(indent=2))
    return 0


def cmd_retain(args: argparse.Namespace) -> int:
    from recsys.components.lake.metrics import push_lake_report
    from recsys.core.data.retention import policies_from_settings, retain

    settings = load_settings()
    lake = open_lake(args.lake)
    with step("lake retain", lake=lake.uri, dry_run=args.dry_run):
        report = retain(lake, policies_from_settings(settings), dry_run=args.dry_run)
    push_lake_report(settings.pushgateway_url, report)
    print(json.dumps(report, indent=2))
    return 0
