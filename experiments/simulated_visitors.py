"""Anonymous visitors for the simulated experiment: shoppers of the generated shop who browse
without logging in, so the service knows them only by their live session.

A visit is drawn the way the generator draws a session (`core/data/synthetic/sessions.py`):
the shopper picks a subcategory by their category affinity, looks at a geometric number of
items in it (mean `MEAN_VIEWS`, at most `MAX_VIEWS`), the items that win on taste +
log-popularity + Gumbel noise, best first. Its views go to the collector under the id the
collector gives an unbound visitor (`anonymous:<hash of the session>`), the stream job turns
them into the visitor's live session, and the visitor's request is answered from it
(serving's `session` path). The visitor then answers the list with the shopper's hidden
tastes (`simulator.respond`), like a logged-in user.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import orjson

from recsys.core.data.synthetic.sessions import MAX_VIEWS, MEAN_VIEWS
from recsys.core.data.visitors import anonymous_user_id

VIEW_GAP_MS = 30_000
"""Time between two simulated views (the generator's gaps average ~47 s)."""


@dataclass(frozen=True)
class Visit:
    session_id: str
    visitor_id: str
    """The anonymous id the collector keeps the visitor's events under."""
    shopper: int
    """The shop user behind the visitor (their hidden tastes answer the list)."""
    items: tuple[int, ...]
    """Catalogue positions viewed, in order."""


def draw_visit(audience, shopper: int, session_id: str, rng: np.random.Generator) -> Visit:
    """The items `shopper` views in one anonymous session (as the generator draws them)."""
    category = int(min((audience.affinity_cdf[shopper] < rng.random()).sum(),
                       audience.affinity_cdf.shape[1] - 1))
    in_category = np.flatnonzero(audience.item_category == category)
    if in_category.size == 0:  # an empty subcategory: the shopper looks anywhere
        in_category = np.arange(audience.item_category.size)
    views = int(min(rng.geometric(1.0 / MEAN_VIEWS), MAX_VIEWS, in_category.size))
    taste = audience.user_vectors[shopper] @ audience.item_vectors[in_category].T \
        * audience.scale
    noisy = taste + audience.log_popularity[in_category] + rng.gumbel(size=taste.shape)
    viewed = in_category[np.argsort(-noisy)[:views]]
    return Visit(session_id, anonymous_user_id(session_id), shopper,
                 tuple(int(i) for i in viewed))


def view_events(audience, visit: Visit, now_ms: int | None = None) -> list[bytes]:
    """The visit's views as the shop's front end posts them, ending now, under the anonymous
    id the collector would derive from the session (event ids `<session_id>-view-<n>`)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    start = now_ms - VIEW_GAP_MS * len(visit.items)
    return [orjson.dumps({
        "event_id": f"{visit.session_id}-view-{n}",
        "user_id": visit.visitor_id, "session_id": visit.session_id, "event_type": "view",
        "timestamp": start + VIEW_GAP_MS * n,
        "properties": {"product_id": str(audience.item_ids[item]),
                       "price": float(audience.prices[item]),
                       "category": str(audience.category_codes[audience.item_category[item]])}})
        for n, item in enumerate(visit.items, start=1)]
