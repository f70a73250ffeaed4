"""What serving knows about items beyond the model: category and availability."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recsys.core.columns import Columns
from recsys.core.errors import NotFoundError

if TYPE_CHECKING:
    from recsys.core.lake import Lake

log = logging.getLogger(__name__)
C = Columns
UNAVAILABLE_FILE = "catalog/unavailable_items.parquet"


@dataclass
class Catalogue:
    categories: dict[str, str] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)

    @classmethod
    def from_lake(cls, lake: Lake) -> "Catalogue":
        """Categories from the newest item_stats snapshot; unavailable items from
        `catalog/unavailable_items.parquet` (column item_id) when the shop publishes one."""
        # imported here: the seldon v1 wrapper's environment has no pyarrow and only ever
        # builds an empty Catalogue
        from recsys.core.feature_snapshots import read_latest

        items = read_latest(lake, "item_stats", columns=[C.item_id, C.category])
        categories = {} if items is None else dict(zip(items[C.item_id].astype(str),
                                                      items[C.category]))
        try:
            listed = lake.read_table(UNAVAILABLE_FILE, columns=[C.item_id]).to_pandas()
            unavailable = set(listed[C.item_id].astype(str))
        except NotFoundError:  # the shop publishes no list: every item is available
            unavailable = set()
        log.info("catalogue: %d item categories, %d unavailable items", len(categories),
                 len(unavailable))
        return cls(categories, unavailable)
