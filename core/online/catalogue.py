"""What serving knows about items beyond the model: category, and a fixed set of
unavailable items (live stock and promotions: `core/online/business_rules.py`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recsys.core.data.columns import Columns

if TYPE_CHECKING:
    from recsys.core.data.lake import Lake

log = logging.getLogger(__name__)
C = Columns


@dataclass
class Catalogue:
    categories: dict[str, str] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)

    @classmethod
    def from_lake(cls, lake: Lake) -> "Catalogue":
        """Categories from the newest item_stats snapshot. Availability is live data, read
        and refreshed by serving (`serving/live_rules.py`), not part of this snapshot."""
        # imported here: the seldon v1 wrapper's environment has no pyarrow and only ever
        # builds an empty Catalogue
        from recsys.core.data.feature_snapshots import read_latest

        items = read_latest(lake, "item_stats", columns=[C.item_id, C.category])
        categories = {} if items is None else dict(zip(items[C.item_id].astype(str),
                                                      items[C.category]))
        log.info("catalogue: %d item categories", len(categories))
        return cls(categories)
