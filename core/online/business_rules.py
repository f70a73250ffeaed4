"""Business rules as live data: stock and promotions, kept in the lake.

Both are append-only change logs, one small Parquet file per change under `catalog/stock/`
and `catalog/promotions/`, so that two operators (or a shop's feed and an operator) never
overwrite each other: the newest record per item (stock) or per promotion id wins.
`compact` folds many change files into one (what it folds is deleted only after the merged
file is written; a change written meanwhile is kept), so the logs stay small.

- Stock: `item_id`, `available`, `changed_at` (when it takes effect: a future time is a
  scheduled change). The older `catalog/unavailable_items.parquet` list still counts as
  unavailable items.
- Promotion: `promotion_id`, `item_id`, `boost` (scores are multiplied by it), `pin_slot`
  (1-based position the item is shown at, or none), `starts_at`, `ends_at`; ending one
  early writes its record again with `ends_at` = now.

Readers skip (and count) rows that break these rules rather than failing: serving must keep
answering whatever a feed wrote.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field

import pandas as pd

from recsys.core.errors import ConfigError, NotFoundError

log = logging.getLogger(__name__)
STOCK_PREFIX = "catalog/stock/"
PROMOTIONS_PREFIX = "catalog/promotions/"
LEGACY_UNAVAILABLE = "catalog/unavailable_items.parquet"
MAX_ID_LENGTH = 256
MAX_BOOST = 100.0
MAX_PIN_SLOT = 100


def stock_schema():
    import pyarrow as pa  # here: the seldon v1 environment imports this module without it

    time = pa.timestamp("ms", tz="UTC")
    return pa.schema([("item_id", pa.string()), ("available", pa.bool_()),
                      ("changed_at", time), ("recorded_at", time)])


def promotion_schema():
    import pyarrow as pa

    time = pa.timestamp("ms", tz="UTC")
    return pa.schema([("promotion_id", pa.string()), ("item_id", pa.string()),
                      ("boost", pa.float64()), ("pin_slot", pa.int32()),
                      ("starts_at", time), ("ends_at", time), ("recorded_at", time)])


@dataclass(frozen=True)
class Promotion:
    promotion_id: str
    item_id: str
    boost: float
    pin_slot: int | None
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp


@dataclass(frozen=True)
class ActiveRules:
    """The rules in force at one moment: what serving applies."""

    unavailable: frozenset[str] = frozenset()
    promotions: dict[str, Promotion] = field(default_factory=dict)
    """Active promotions by item (the newest-starting one when an item has several)."""
    version: str = "none"
    """Changes whenever what is in force changes (part of the cache key)."""


@dataclass(frozen=True)
class RuleLogs:
    """Every stock and promotion record read from the lake (newest per key)."""

    stock: pd.DataFrame
    promotions: pd.DataFrame
    skipped_rows: int = 0

    def at(self, now: pd.Timestamp) -> ActiveRules:
        changed = self.stock[self.stock["changed_at"] <= now]
        latest = changed.sort_values(["changed_at", "recorded_at"]).drop_duplicates(
            "item_id", keep="last")
        unavailable = frozenset(latest.loc[~latest["available"], "item_id"])
        active = {}
        running = self.promotions[(self.promotions["starts_at"] <= now)
                                  & (now < self.promotions["ends_at"])]
        for row in running.sort_values(["starts_at", "promotion_id"]).itertuples():
            pin = None if pd.isna(row.pin_slot) else int(row.pin_slot)
            active[row.item_id] = Promotion(row.promotion_id, row.item_id, float(row.boost), pin,
                                            row.starts_at, row.ends_at)
        text = "\x1f".join([*sorted(unavailable), "\x1e",
                            *(f"{p.promotion_id}:{p.item_id}:{p.boost}:{p.pin_slot}"
                              for p in sorted(active.values(), key=lambda p: p.promotion_id))])
        digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        return ActiveRules(unavailable, active, digest)


def read_rule_logs(lake) -> RuleLogs:
    """Both logs (and the legacy unavailable list), rows that break the rules skipped."""
    stock = lake.read_tables(lake.list(STOCK_PREFIX), schema=stock_schema()).to_pandas()
    promotions = lake.read_tables(lake.list(PROMOTIONS_PREFIX),
                                  schema=promotion_schema()).to_pandas()
    try:
        legacy = lake.read_table(LEGACY_UNAVAILABLE, columns=["item_id"]).to_pandas()
    except NotFoundError:
        legacy = pd.DataFrame({"item_id": []})
    if len(legacy):
        epoch = pd.Timestamp(0, tz="UTC")
        stock = pd.concat([pd.DataFrame({"item_id": legacy["item_id"].astype(str),
                                         "available": False, "changed_at": epoch,
                                         "recorded_at": epoch}), stock], ignore_index=True)
    good_stock = _valid_ids(stock["item_id"]) & stock["available"].notna() & \
        stock["changed_at"].notna()
    good_promotions = _valid_ids(promotions["promotion_id"]) & \
        _valid_ids(promotions["item_id"]) & promotions["boost"].between(0, MAX_BOOST) & \
        (promotions["boost"] > 0) & promotions["starts_at"].notna() & \
        promotions["ends_at"].notna() & (promotions["starts_at"] < promotions["ends_at"]) & \
        (promotions["pin_slot"].isna() | promotions["pin_slot"].between(1, MAX_PIN_SLOT))
    skipped = int((~good_stock).sum() + (~good_promotions).sum())
    if skipped:
        log.warning("business rules: %d malformed stock/promotion rows skipped", skipped)
    stock = stock[good_stock].astype({"available": bool})
    promotions = promotions[good_promotions].fillna({"recorded_at": pd.Timestamp(0, tz="UTC")})
    promotions = promotions.sort_values("recorded_at", kind="stable").drop_duplicates(
        "promotion_id", keep="last")
    return RuleLogs(stock, promotions, skipped)


def write_stock(lake, item_ids: list[str], available: bool,
                changed_at: pd.Timestamp | None = None) -> str:
    """Record items as (un)available from `changed_at` (default now); returns the file key."""
    import pyarrow as pa

    now = pd.Timestamp.now(tz="UTC")
    items = [_check_id(i, "item_id") for i in item_ids]
    if not items:
        raise ConfigError("name at least one item")
    table = pa.table({"item_id": items, "available": [available] * len(items),
                      "changed_at": [changed_at or now] * len(items),
                      "recorded_at": [now] * len(items)}, schema=stock_schema())
    return _append(lake, STOCK_PREFIX, table)


def write_promotion(lake, item_id: str, boost: float = 1.0, pin_slot: int | None = None,
                    starts_at: pd.Timestamp | None = None, ends_at: pd.Timestamp | None = None,
                    promotion_id: str | None = None) -> str:
    """Record a promotion (or a new version of one, by its id); returns its id."""
    import pyarrow as pa

    now = pd.Timestamp.now(tz="UTC")
    starts_at = starts_at or now
    if ends_at is None or ends_at <= starts_at:
        raise ConfigError(f"a promotion needs an end after its start ({starts_at}), "
                          f"got {ends_at}")
    if not 0 < boost <= MAX_BOOST:
        raise ConfigError(f"boost must be in (0, {MAX_BOOST}], got {boost}")
    if pin_slot is not None and not 1 <= pin_slot <= MAX_PIN_SLOT:
        raise ConfigError(f"pin slot must be from 1 to {MAX_PIN_SLOT}, got {pin_slot}")
    if boost == 1.0 and pin_slot is None:
        raise ConfigError("a promotion boosts (--boost > 1) or pins (--pin SLOT) its item")
    promotion_id = _check_id(promotion_id or uuid.uuid4().hex[:12], "promotion_id")
    table = pa.table({"promotion_id": [promotion_id], "item_id": [_check_id(item_id, "item_id")],
                      "boost": [float(boost)], "pin_slot": [pin_slot], "starts_at": [starts_at],
                      "ends_at": [ends_at], "recorded_at": [now]}, schema=promotion_schema())
    _append(lake, PROMOTIONS_PREFIX, table)
    return promotion_id


def end_promotion(lake, promotion_id: str) -> None:
    """End a promotion now (its record again, with `ends_at` = now)."""
    logs = read_rule_logs(lake)
    found = logs.promotions[logs.promotions["promotion_id"] == promotion_id]
    if found.empty:
        raise NotFoundError(f"no promotion {promotion_id!r}")
    row = found.iloc[-1]
    now = pd.Timestamp.now(tz="UTC")
    start = min(row["starts_at"], now - pd.Timedelta(milliseconds=1))
    write_promotion(lake, row["item_id"], row["boost"],
                    None if pd.isna(row["pin_slot"]) else int(row["pin_slot"]), start, now,
                    promotion_id)


def compact(lake, prefix: str, keep_after: pd.Timestamp | None = None) -> int:
    """Fold a log's files into one holding the newest record per key (and, for promotions,
    only those not ended before `keep_after`); returns how many files were folded."""
    import pyarrow as pa

    schema, key = (stock_schema(), "item_id") if prefix == STOCK_PREFIX else \
        (promotion_schema(), "promotion_id")
    files = lake.list(prefix)
    if len(files) < 2:
        return 0
    frame = lake.read_tables(files, schema=schema).to_pandas()
    frame = frame.sort_values("recorded_at", kind="stable").drop_duplicates(key, keep="last")
    if keep_after is not None and prefix == PROMOTIONS_PREFIX:
        frame = frame[frame["ends_at"] > keep_after]
    _append(lake, prefix, pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    for name in files:
        lake.delete(name)
    return len(files)


def _append(lake, prefix: str, table) -> str:
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
    key = f"{prefix}{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    lake.write_table(key, table)
    return key


def _valid_ids(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    return text.notna() & text.str.len().between(1, MAX_ID_LENGTH).fillna(False)


def _check_id(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise ConfigError(f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} "
                          f"characters, got {value!r}"[:300])
    return value.strip()
