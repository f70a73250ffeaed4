"""What serving knows about items beyond the model: category and availability."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsys.core.columns import Columns

log = logging.getLogger(__name__)
C = Columns
UNAVAILABLE_FILE = "catalog/unavailable_items.parquet"


@dataclass
class Catalogue:
    categories: dict[str, str] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)

    @classmethod
    def from_lake(cls, lake_dir: str | Path) -> "Catalogue":
        """Categories from the newest item_stats snapshot; unavailable items from
        `catalog/unavailable_items.parquet` (column item_id) when the shop publishes one."""
        lake_dir = Path(lake_dir)
        snapshots = sorted((lake_dir / "features" / "item_stats").glob("as_of=*.parquet"))
        categories = {}
        if snapshots:
            items = pd.read_parquet(snapshots[-1], columns=[C.item_id, C.category])
            categories = dict(zip(items[C.item_id].astype(str), items[C.category]))
        unavailable = set()
        if (lake_dir / UNAVAILABLE_FILE).exists():
            unavailable = set(pd.read_parquet(lake_dir / UNAVAILABLE_FILE)[C.item_id].astype(str))
        log.info("catalogue: %d item categories, %d unavailable items", len(categories),
                 len(unavailable))
        return cls(categories, unavailable)
