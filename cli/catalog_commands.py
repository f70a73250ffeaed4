"""`recsys catalog stock|promote|end-promotion|rules|compact`: stock and promotions as live
data in the lake; serving applies a change within its refresh period, without a restart."""
from __future__ import annotations

import argparse
import json

import pandas as pd

from recsys.core.errors import ConfigError
from recsys.core.online.business_rules import (
    PROMOTIONS_PREFIX,
    STOCK_PREFIX,
    compact,
    end_promotion,
    read_rule_logs,
    write_promotion,
    write_stock,
)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("catalog", help="stock and promotions (live business rules)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    stock = actions.add_parser("stock", help="mark items available or unavailable")
    stock.add_argument("items", nargs="+", help="item ids")
    state = stock.add_mutually_exclusive_group(required=True)
    state.add_argument("--unavailable", action="store_true")
    state.add_argument("--available", action="store_true")
    stock.add_argument("--at", default=None, help="when it takes effect (ISO time, UTC; "
                       "default now)")
    promote = actions.add_parser("promote", help="boost or pin an item for a period")
    promote.add_argument("item", help="item id")
    promote.add_argument("--boost", type=float, default=1.0,
                         help="multiply the item's score by this (> 1 boosts)")
    promote.add_argument("--pin", type=int, default=None, metavar="SLOT",
                         help="show the item at this 1-based position")
    promote.add_argument("--start", default=None, help="ISO time, UTC (default now)")
    promote.add_argument("--end", required=True, help="ISO time, UTC")
    promote.add_argument("--id", default=None, help="promotion id (default generated; an "
                         "existing id replaces that promotion)")
    end = actions.add_parser("end-promotion", help="end a promotion now")
    end.add_argument("promotion_id")
    actions.add_parser("rules", help="the stock and promotions in force now")
    actions.add_parser("compact", help="fold the change logs into one file each")
    parser.set_defaults(handler=cmd_catalog)


def cmd_catalog(args: argparse.Namespace) -> int:
    from recsys.core.data.lake import Lake
    from recsys.core.settings import load_settings

    settings = load_settings()
    lake = Lake(settings.lake, settings.s3_endpoint_url)
    if args.action == "stock":
        key = write_stock(lake, args.items, available=args.available, changed_at=_time(args.at))
        print(json.dumps({"written": lake.url(key), "items": args.items,
                          "available": args.available}))
    elif args.action == "promote":
        promotion_id = write_promotion(lake, args.item, args.boost, args.pin, _time(args.start),
                                       _time(args.end), args.id)
        print(json.dumps({"promotion_id": promotion_id, "item_id": args.item}))
    elif args.action == "end-promotion":
        end_promotion(lake, args.promotion_id)
        print(json.dumps({"ended": args.promotion_id}))
    elif args.action == "compact":
        now = pd.Timestamp.now(tz="UTC")
        print(json.dumps({"stock_files": compact(lake, STOCK_PREFIX),
                          "promotion_files": compact(lake, PROMOTIONS_PREFIX, keep_after=now)}))
    else:
        rules = read_rule_logs(lake).at(pd.Timestamp.now(tz="UTC"))
        print(json.dumps({"unavailable": sorted(rules.unavailable),
                          "promotions": [{"promotion_id": p.promotion_id, "item_id": p.item_id,
                                          "boost": p.boost, "pin_slot": p.pin_slot,
                                          "starts_at": str(p.starts_at),
                                          "ends_at": str(p.ends_at)}
                                         for p in rules.promotions.values()],
                          "version": rules.version}, indent=2))
    return 0


def _time(text: str | None) -> pd.Timestamp | None:
    if text is None:
        return None
    try:
        value = pd.Timestamp(text)
    except ValueError as exc:
        raise ConfigError(f"not a time: {text!r}") from exc
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
