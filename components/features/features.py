"""features: publish preprocess outputs to Feast - feature tables in the lake, definitions
applied, new snapshots materialized into the online store."""
from __future__ import annotations

import logging

import pandas as pd

from recsys.components.features.tables import write_feature_tables
from recsys.core.data.lake import Lake
from recsys.core.data.processed import Processed
from recsys.core.settings import Settings
from recsys.feature_repo.features.store import (
    apply_repo,
    feature_tables_dir,
    materialize,
    offline_lake,
    open_store,
)

log = logging.getLogger(__name__)


def publish_features(processed: Processed, settings: Settings,
                     until: pd.Timestamp | None = None, tables_written: dict | None = None
                     ) -> dict:
    """Write the snapshots, apply the repo and materialize incrementally up to `until`
    (default now). Returns what was written, for the step's report. `tables_written` are
    the snapshot keys the spark engine's job already wrote to the lake: they are only
    mirrored where Feast reads them."""
    lake = Lake(settings.lake, settings.s3_endpoint_url)
    offline = offline_lake(settings)
    tables = feature_tables_dir(settings)
    if tables_written is None:
        written = write_feature_tables(lake, processed,
                                       mirrors=(offline,) if offline.uri != lake.uri else ())
    else:
        written = tables_written
        if offline.uri != lake.uri:
            for key in (k for keys in written.values() for k in keys):
                offline.write_bytes(key, lake.read_bytes(key))
    store, repo = open_store(settings)
    apply_repo(store, repo)
    end = until if until is not None else pd.Timestamp.now(tz="UTC")
    materialize(store, end.to_pydatetime())
    log.info("features: %s snapshots written under %s, materialized up to %s",
             sum(len(v) for v in written.values()), tables, end)
    return {"tables_dir": str(tables), "snapshots": written, "materialized_until": str(end),
            "profile": settings.feast_profile,
            "users": int(processed.user_features.shape[0]),
            "items": int(processed.item_features.shape[0])}
