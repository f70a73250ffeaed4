"""RetailRocket: events.csv (timestamp ms, visitorid, event, itemid, transactionid) with
optional item_properties_part*.csv and category_tree.csv in the same folder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.readers.base import (
    ReadResult,
    finish,
    map_event_types,
    read_csv_strings,
    synthesize_event_ids,
    timestamps_from_epoch,
)

C = Columns
NAME = "retailrocket"
MARKER_COLUMNS = {"timestamp", "visitorid", "event", "itemid"}
# In the published data every property name is hashed except these; 790 is the
# item's price written as "n<number>".
CATEGORY_PROPERTY = "categoryid"
PRICE_PROPERTY = "790"
MAX_TREE_DEPTH = 32


def read(path: Path) -> ReadResult:
    """Read events.csv; items get a dotted category path (root first) and a price when the
    item properties and category tree are present."""
    events_path = path / "events.csv" if path.is_dir() else path
    folder = events_path.parent
    raw, rejects = read_csv_strings(events_path)
    frame = pd.DataFrame(index=raw.index)
    frame[C.user_id] = raw["visitorid"]
    frame[C.item_id] = raw["itemid"]
    frame[C.event_type] = map_event_types(raw["event"])
    frame[C.timestamp] = timestamps_from_epoch(raw["timestamp"])
    frame[C.event_id] = synthesize_event_ids(raw, NAME, ["timestamp", "visitorid", "event",
                                                         "itemid"])
    properties = _latest_item_properties(folder)
    if properties is not None:
        tree = _read_category_tree(folder / "category_tree.csv")
        categories = properties.get(CATEGORY_PROPERTY)
        if categories is not None:
            paths = categories.map(lambda c: category_path(c, tree)) if tree else categories
            frame[C.category] = frame[C.item_id].map(paths)
        prices = properties.get(PRICE_PROPERTY)
        if prices is not None:
            numeric = pd.to_numeric(prices.str.lstrip("n"), errors="coerce")
            frame[C.price] = frame[C.item_id].map(numeric)
    return ReadResult(finish(frame, f"{NAME} {events_path}", NAME, raw["timestamp"]), rejects)


def _latest_item_properties(folder: Path) -> pd.DataFrame | None:
    parts = sorted(folder.glob("item_properties*.csv"))
    if not parts:
        return None
    frames = []
    for part in parts:
        raw, _ = read_csv_strings(part)
        frames.append(raw[raw["property"].isin([CATEGORY_PROPERTY, PRICE_PROPERTY])])
    props = pd.concat(frames, ignore_index=True)
    props["ts"] = pd.to_numeric(props["timestamp"], errors="coerce")
    latest = props.sort_values("ts").drop_duplicates(["itemid", "property"], keep="last")
    return latest.pivot(index="itemid", columns="property", values="value")


def _read_category_tree(path: Path) -> dict[str, str | None]:
    """Parent per category id (missing for a root)."""
    if not path.exists():
        return {}
    tree, _ = read_csv_strings(path)
    tree = tree.dropna(subset=["categoryid"])
    return dict(zip(tree["categoryid"], tree["parentid"]))


def category_path(category: str | None, parents: dict[str, str | None]) -> str | None:
    """'root.parent.leaf' for a leaf category id, following the tree (cycles cut)."""
    if category is None or category != category:
        return None
    chain = [category]
    while len(chain) < MAX_TREE_DEPTH:
        parent = parents.get(chain[-1])
        if parent is None or parent != parent or parent in chain:
            break
        chain.append(parent)
    return ".".join(reversed(chain))
