"""preprocess: clean events, weight interactions, split by time, build features and the matrix.

The split is temporal: the last `holdout_days` of the window are the holdout; features
are computed from training events only, as of the split time, so nothing leaks forward.
"""
from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd

from recsys.components.preprocess.clean import (
    add_weights,
    aggregate_interactions,
    drop_near_duplicates,
    fill_prices,
    fill_ratings,
)
from recsys.components.preprocess.config import PreprocessConfig
from recsys.core.data.columns import Columns
from recsys.core.data.entity_stats import item_features, user_features
from recsys.core.data.event_store import CLEAN_ZONE, read_window
from recsys.core.data.fingerprint import frame_sha256
from recsys.core.data.lake import Lake
from recsys.core.data.processed import PROCESSED_ZONE, Processed, snapshot_key, write_processed
from recsys.core.data.schema import EVENT_SCHEMA, check_event_frame
from recsys.core.data.time_order import in_time_order
from recsys.core.errors import DataQualityError

log = logging.getLogger(__name__)
C = Columns



def itemless(events: pd.DataFrame) -> pd.Series:
    """A search names no item: it stays in the lake (and the session), counted here, but
    cannot be an interaction."""
    return events[C.item_id].isna() | events[C.item_id].eq("")


def split_times(last_event: pd.Timestamp, config: PreprocessConfig,
                window_end: datetime | None) -> tuple[pd.Timestamp, pd.Timestamp,
                                                      pd.Timestamp | None]:
    """(window end, split time, training start or None) of a window."""
    end = pd.Timestamp(window_end) if window_end is not None else pd.Timestamp(last_event)
    end = end.tz_localize("UTC") if end.tzinfo is None else end
    split = end - pd.Timedelta(days=config.holdout_days)
    start = split - pd.Timedelta(days=config.lookback_days) if config.lookback_days else None
    return end, split, start


def in_train(events: pd.DataFrame, split: pd.Timestamp,
             start: pd.Timestamp | None) -> pd.Series:
    mask = events[C.timestamp] < split
    if start is not None:
        mask &= events[C.timestamp] >= start
    return mask


def in_holdout(events: pd.DataFrame, split: pd.Timestamp) -> pd.Series:
    return events[C.timestamp] >= split


def preprocess(events: pd.DataFrame, config: PreprocessConfig,
               window_end: datetime | None = None) -> Processed:
    """Turn clean events into interactions, a temporal split, feature tables and the matrix."""
    check_event_frame(events, "preprocess input")
    if events.empty:
        raise DataQualityError("preprocess: no clean events in the window")
    without_item = itemless(events)
    with_items = events[~without_item]
    deduped = drop_near_duplicates(with_items, config.dedup_seconds)
    filled, price_counts = fill_prices(deduped)
    filled, rating_counts = fill_ratings(filled)
    weighted = in_time_order(add_weights(filled, config.weights))
    end, split, start = split_times(weighted[C.timestamp].max(), config, window_end)
    train_events = weighted[in_train(weighted, split, start)]
    holdout_events = weighted[in_holdout(weighted, split)]
    if train_events.empty:
        raise_no_training_events(end, split, config)
    counts = {
        "window_start": str(weighted[C.timestamp].min()),
        "events_in": len(events), "itemless_events": int(without_item.sum()),
        "near_duplicates_removed": len(with_items) - len(deduped),
        **price_counts, **rating_counts,
        "train_events": len(train_events), "holdout_events": len(holdout_events),
        "events_before_lookback": int((weighted[C.timestamp] < start).sum())
        if start is not None else 0,
        "events_sha256": frame_sha256(events, [C.event_id]),
    }
    return assemble(
        weighted, aggregate_interactions(train_events), aggregate_interactions(holdout_events),
        user_features(train_events, split),
        item_features(train_events, split, config.popularity_half_life_days),
        counts, config, end, split, start)


def raise_no_training_events(end: pd.Timestamp, split: pd.Timestamp,
                             config: PreprocessConfig) -> None:
    raise DataQualityError(
        f"preprocess: no training events before the split at {split} "
        f"(window ends {end}, holdout {config.holdout_days} days)")


def assemble(events: pd.DataFrame | None, train: pd.DataFrame, holdout: pd.DataFrame,
             users: pd.DataFrame, items: pd.DataFrame, counts: dict, config: PreprocessConfig,
             end: pd.Timestamp, split: pd.Timestamp, start: pd.Timestamp | None) -> Processed:
    """The snapshot from what either engine computed, with its summary (the user-item
    matrix's shape and density are described there; each model builds its own matrix, over
    its own catalogue).

    Every event is counted: events_in = itemless_events + near_duplicates_removed +
    train_events + holdout_events + events_before_lookback."""
    pairs = train[[C.user_id, C.item_id]].astype(str).drop_duplicates()
    shape = (pairs[C.user_id].nunique(), pairs[C.item_id].nunique())
    cells = shape[0] * shape[1]
    warm_users = holdout[C.user_id].isin(set(train[C.user_id])).groupby(holdout[C.user_id]).first()
    summary = {
        "window_start": counts["window_start"], "window_end": str(end),
        "split_time": str(split), "train_start": str(start) if start is not None else None,
        **{k: v for k, v in counts.items() if k != "window_start"},
        "train_interactions": len(train), "holdout_interactions": len(holdout),
        "train_users": int(train[C.user_id].nunique()),
        "train_items": int(train[C.item_id].nunique()),
        "holdout_users": int(holdout[C.user_id].nunique()),
        "holdout_users_seen_in_train": int(warm_users.sum()) if len(warm_users) else 0,
        "matrix_shape": list(shape), "matrix_nnz": len(pairs),
        "matrix_density": round(len(pairs) / cells, 8) if cells else 0.0,
        "weights": config.weights,
    }
    log.info("preprocess: %d events -> %d train / %d holdout interactions, %d users x %d items",
             counts["events_in"], len(train), len(holdout), *shape)
    return Processed(events=events, train=train, holdout=holdout, user_features=users,
                     item_features=items, summary=summary)


def preprocess_window(lake: Lake, config: PreprocessConfig, start: datetime | None = None,
                      end: datetime | None = None) -> tuple[str, Processed]:
    """Preprocess the clean zone's window into a processed snapshot in the lake."""
    events = read_window(lake, CLEAN_ZONE, EVENT_SCHEMA, start, end)
    processed = preprocess(events, config, window_end=end)
    key = snapshot_key(processed.summary)
    write_processed(processed, lake, key)
    lake.write_json(f"{PROCESSED_ZONE}/latest.json", {"snapshot": key})
    return key, processed
