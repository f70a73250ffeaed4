"""`recsys generate`: a deterministic synthetic shop written in any supported layout."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.synthetic.catalogue import Catalogue, make_catalogue, make_customers
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.dirt import add_dirt
from recsys.core.data.synthetic.sessions import generate_events
from recsys.core.data.synthetic.writers import write

log = logging.getLogger(__name__)
C = Columns
_ID_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
_ID_PRIME = 2_147_483_629  # coprime with 36**7, so i -> i*p mod 36**7 is one-to-one


@dataclass
class Shop:
    """A generated shop: its catalogue and its (possibly dirty) events."""

    catalogue: Catalogue
    events: pd.DataFrame


def period_end(config: ShopConfig) -> pd.Timestamp:
    if config.end is not None:
        end = pd.Timestamp(config.end)
        return end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    return pd.Timestamp.now(tz="UTC").floor("D")


def generate_shop(config: ShopConfig) -> Shop:
    """Draw a catalogue, customers and exactly `config.events` clean events, then dirt."""
    rng = np.random.default_rng(config.seed)
    catalogue = make_catalogue(rng, config.n_items, config.latent_dim)
    customers = make_customers(rng, config.n_users, catalogue)
    return _shop_events(rng, config, config.events, catalogue, customers)


def generate_shop_parts(config: ShopConfig, part_events: int) -> Iterator[Shop]:
    """The shop in parts of at most `part_events` clean events: one catalogue and one set of
    customers, each part's events drawn from a stream of its own (seeded by the shop's seed
    and the part's number), so memory holds one part. A shop drawn in parts is a different
    (equally deterministic) draw than the same shop in one piece."""
    if part_events <= 0:
        raise ValueError("part_events must be positive")
    rng = np.random.default_rng(config.seed)
    catalogue = make_catalogue(rng, config.n_items, config.latent_dim)
    customers = make_customers(rng, config.n_users, catalogue)
    for number, first in enumerate(range(0, config.events, part_events)):
        size = min(part_events, config.events - first)
        part_rng = np.random.default_rng([config.seed, number + 1])
        yield _shop_events(part_rng, config, size, catalogue, customers)


def _shop_events(rng: np.random.Generator, config: ShopConfig, events_count: int,
                 catalogue: Catalogue, customers) -> Shop:
    end = period_end(config)
    start = end - pd.Timedelta(days=config.days)
    events = generate_events(rng, events_count, catalogue, customers, start, config.days,
                             config.taste_strength)
    # nothing generated after the period end (a rating an hour after a late purchase)
    late = events[C.timestamp] >= end
    events.loc[late, C.timestamp] = end - pd.Timedelta(milliseconds=1)
    events[C.event_id] = event_ids(events[C.timestamp], int(rng.integers(0, 36**7)))
    events = events.drop(columns=["_session"])
    events = add_dirt(rng, events, config.dirt, now=pd.Timestamp.now(tz="UTC"))
    return Shop(catalogue=catalogue, events=events)


def event_ids(timestamps: pd.Series, offset: int) -> pd.Series:
    """Ids in the shop's own style, `evt_<epoch ms>_<7 chars>`, unique per event."""
    n = len(timestamps)
    codes = (np.arange(n, dtype=np.int64) * _ID_PRIME + offset) % 36**7
    letters = np.empty((n, 7), dtype="<U1")
    for position in range(6, -1, -1):
        letters[:, position] = _ID_ALPHABET[codes % 36]
        codes //= 36
    suffix = pd.Series(letters.view("<U7").ravel(), index=timestamps.index)
    ms = timestamps.astype("datetime64[ms, UTC]").astype("int64").astype(str)
    return "evt_" + ms + "_" + suffix


def write_shop(shop: Shop, fmt: str, out: Path, config: ShopConfig) -> list[Path]:
    """Write the shop's events in layout `fmt` under `out`."""
    rng = np.random.default_rng(config.seed + 1)
    malformed = int(round(len(shop.events) * config.dirt.malformed))
    paths = write(shop.events, shop.catalogue, fmt, Path(out), rng, malformed)
    log.info("wrote %d events (+%d malformed lines) as %s to %s", len(shop.events), malformed,
             fmt, ", ".join(map(str, paths)))
    return paths
