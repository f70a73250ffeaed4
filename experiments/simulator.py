"""Simulated shoppers for the embedded default: the generated shop's own users, with the
hidden tastes the generator gave them, answering the lists the running service shows.

For user u and a shown item i, the fit is the percentile of taste(u, i) (the generator's
`taste_strength / sqrt(dim) * u . i`) among all of the catalogue's items for u. The user
clicks item i with probability `click_top * fit^click_sharpness` (independently per item;
the list is clicked when any is, the first clicked item is the one reported) and buys the
clicked item with probability `buy_top * fit^4`, at the catalogue's price. A list that
fits a user's tastes is clicked more: which variant is truly better is then known from the
same model (`expected_ctr` per variant, the mean of each list's click probability), and a
test can check that the analysis finds it.

A share of the requests (`visitor_share`) comes from anonymous visitors instead
(`simulated_visitors.py`): the drawn shopper browses without logging in, their views reach
the collector first, and once the stream job has them in the visitor's live session the
service answers the visitor from it (its `session` path) and the shopper's tastes answer
the list. Their lists, clicks and purchases count in the experiment like anyone's (the
visitor's anonymous id is the unit); `visitors` tallies them apart, with the paths and
scorers the service reported (`explain`).

Traffic goes through the real HTTP surfaces: GET /recommend/{user} on the service (its
token), POST /events on the collector (its write key) with `click` events naming the
list's `recommendation_id` and `purchase` events with their price.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import orjson

from recsys.core.data.synthetic.catalogue import make_catalogue, make_customers
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.progress import progress
from recsys.experiments.simulated_visitors import Visit, draw_visit, view_events

log = logging.getLogger(__name__)


@dataclass
class Audience:
    user_ids: np.ndarray
    user_vectors: np.ndarray
    activity: np.ndarray
    item_index: dict[str, int]
    item_vectors: np.ndarray
    prices: np.ndarray
    scale: float
    item_ids: np.ndarray
    item_category: np.ndarray
    """Subcategory index per item."""
    category_codes: np.ndarray
    """Subcategory index -> the category the shop's events carry."""
    log_popularity: np.ndarray
    affinity_cdf: np.ndarray
    """Users x subcategories, cumulative: how a user picks what to browse."""


def audience_of(config: ShopConfig) -> Audience:
    """The shop's users and items with their hidden tastes, drawn exactly as
    `generate_shop` draws them (same seed, same order)."""
    rng = np.random.default_rng(config.seed)
    catalogue = make_catalogue(rng, config.n_items, config.latent_dim)
    customers = make_customers(rng, config.n_users, catalogue)
    return Audience(customers.user_ids, customers.vectors, customers.activity,
                    {str(item): i for i, item in enumerate(catalogue.item_ids)},
                    catalogue.vectors, catalogue.price,
                    config.taste_strength / np.sqrt(config.latent_dim),
                    catalogue.item_ids, catalogue.category, catalogue.category_codes,
                    np.log(catalogue.popularity), customers.affinity_cdf)


@dataclass(frozen=True)
class Behaviour:
    click_top: float = 0.15
    """Click probability of an item that fits the user best."""
    click_sharpness: float = 8.0
    buy_top: float = 0.35
    """Purchase probability after clicking a best-fitting item."""


@dataclass(frozen=True)
class Response:
    clicked: str | None
    bought: bool
    price: float
    list_click_probability: float


def respond(audience: Audience, behaviour: Behaviour, user: int, items: list[str],
            rng: np.random.Generator) -> Response:
    """What user number `user` does with a shown list."""
    shown = [(name, audience.item_index[name]) for name in items
             if name in audience.item_index]
    known = [index for _, index in shown]
    if not known:
        return Response(None, False, 0.0, 0.0)
    taste = audience.user_vectors[user] @ audience.item_vectors.T * audience.scale
    order = taste.argsort().argsort()
    fit = order[known] / max(len(taste) - 1, 1)
    click = behaviour.click_top * fit ** behaviour.click_sharpness
    list_probability = float(1 - np.prod(1 - click))
    clicked = np.flatnonzero(rng.random(click.size) < click)
    if clicked.size == 0:
        return Response(None, False, 0.0, list_probability)
    first = int(clicked[0])
    item = known[first]
    bought = bool(rng.random() < behaviour.buy_top * fit[first] ** 4)
    return Response(shown[first][0], bought, float(audience.prices[item]), list_probability)


@dataclass
class TrafficResult:
    requests: int = 0
    failed_requests: int = 0
    events_sent: int = 0
    events_refused: int = 0
    per_variant: dict = field(default_factory=dict)
    """variant -> lists, clicked lists, purchases, sum of list click probabilities."""
    visitors: dict = field(default_factory=dict)
    """The anonymous visitors' share of `per_variant`, with the `paths` and `scorers` the
    service reported for their lists (variant -> counts)."""
    visitors_without_session: int = 0
    """Visitors whose views were not in their live session in time (still asked)."""

    def expected_ctr(self) -> dict[str, float]:
        return {v: s["click_probability"] / s["lists"] for v, s in self.per_variant.items()
                if s["lists"]}


@dataclass(frozen=True)
class Endpoints:
    service_url: str
    service_token: str
    collector_url: str
    write_key: str


def play(audience: Audience, endpoints: Endpoints, days: int, requests_per_day: int,
         seed: int = 0, behaviour: Behaviour = Behaviour(), clients: int = 8,
         k: int = 10, event_prefix: str = "sim", visitor_share: float = 0.0,
         live_items: Callable[[str], list[str]] | None = None,
         session_wait_seconds: float = 60.0) -> TrafficResult:
    """`days` simulated days (compressed: no waiting) of `requests_per_day` recommendation
    requests from users drawn by their activity; their clicks and purchases are posted to
    the collector (event ids `<event_prefix>-<recommendation_id>-click|buy`). Each request
    is an anonymous visitor's with probability `visitor_share`: the day's visitors' views
    are posted first (session ids `<event_prefix>-visit-<day>-<n>`) and, with `live_items`
    (a visitor id -> the items of their live session), awaited in the online store for at
    most `session_wait_seconds` before the day's requests."""
    import httpx

    rng = np.random.default_rng(seed)
    visit_rng = np.random.default_rng([seed, 1])
    result = TrafficResult()
    lock = threading.Lock()
    draws = rng.choice(len(audience.user_ids), size=(days, requests_per_day),
                       p=audience.activity)
    anonymous = visit_rng.random((days, requests_per_day)) < visitor_share

    def session(requests: list, worker_seed: int) -> None:
        local = np.random.default_rng(worker_seed)
        events: list[bytes] = []
        with httpx.Client(timeout=30) as http:
            for request in requests:
                visit = request if isinstance(request, Visit) else None
                shopper = visit.shopper if visit else int(request)
                user_id = visit.visitor_id if visit else str(audience.user_ids[shopper])
                params: dict[str, str | int] = {"top_k": k}
                if visit:
                    params["explain"] = "true"
                answer = http.get(f"{endpoints.service_url}/recommend/{user_id}",
                                  params=params,
                                  headers={"Authorization": f"Bearer {endpoints.service_token}"})
                if answer.status_code != 200:
                    with lock:
                        result.failed_requests += 1
                    continue
                body = answer.json()
                response = respond(audience, behaviour, shopper, body["item_ids"], local)
                variant = body.get("variant") or "none"
                _tally(result, lock, variant, response)
                if visit:
                    _tally_visitor(result, lock, variant, response, body)
                events += _events(user_id, body["recommendation_id"], response,
                                  event_prefix, visit.session_id if visit else None)
            _send(http, endpoints, events, result, lock)

    for day in progress(range(days), desc="simulated days", total=days):
        requests: list = list(draws[day])
        for n in np.flatnonzero(anonymous[day]):
            requests[n] = draw_visit(audience, int(draws[day][n]),
                                     f"{event_prefix}-visit-{day}-{n}", visit_rng)
        visits = [r for r in requests if isinstance(r, Visit)]
        _browse(audience, endpoints, visits, result, lock, live_items, session_wait_seconds)
        chunks = np.array_split(np.arange(len(requests)), clients)
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(session, [[requests[i] for i in chunk] for chunk in chunks],
                          [seed * 1000 + day * clients + c for c in range(clients)]))
        log.info("simulated day %d: %d requests (%d anonymous), expected CTR %s", day + 1,
                 result.requests, len(visits),
                 {v: round(c, 4) for v, c in result.expected_ctr().items()})
    return result


def _browse(audience: Audience, endpoints: Endpoints, visits: list[Visit],
            result: TrafficResult, lock: threading.Lock,
            live_items: Callable[[str], list[str]] | None, wait_seconds: float) -> None:
    """Post the visits' views, then wait until each visitor's live session holds their last
    view (those still missing after `wait_seconds` are counted and asked anyway)."""
    import httpx

    if not visits:
        return
    with httpx.Client(timeout=30) as http:
        _send(http, endpoints, [e for v in visits for e in view_events(audience, v)],
              result, lock)
    if live_items is None:
        return
    waiting = {v.visitor_id: str(audience.item_ids[v.items[-1]]) for v in visits}
    deadline = time.monotonic() + wait_seconds
    while waiting and time.monotonic() < deadline:
        waiting = {visitor: last for visitor, last in waiting.items()
                   if last not in live_items(visitor)}
        if waiting:
            time.sleep(0.2)
    result.visitors_without_session += len(waiting)
    if waiting:
        log.warning("%d visitors' views were not in their live session after %.0f s",
                    len(waiting), wait_seconds)


def _tally(result: TrafficResult, lock: threading.Lock, variant: str,
           response: Response) -> None:
    with lock:
        result.requests += 1
        _count(result.per_variant, variant, response)


def _tally_visitor(result: TrafficResult, lock: threading.Lock, variant: str,
                   response: Response, body: dict) -> None:
    with lock:
        stats = _count(result.visitors, variant, response)
        for kind, value in (("paths", body.get("path")), ("scorers", body.get("scorer"))):
            counts = stats.setdefault(kind, {})
            counts[str(value)] = counts.get(str(value), 0) + 1


def _count(tallies: dict, variant: str, response: Response) -> dict:
    stats = tallies.setdefault(variant, {
        "lists": 0, "clicked": 0, "purchases": 0, "click_probability": 0.0})
    stats["lists"] += 1
    stats["clicked"] += response.clicked is not None
    stats["purchases"] += response.bought
    stats["click_probability"] += response.list_click_probability
    return stats


def _events(user_id: str, recommendation_id: str, response: Response,
            prefix: str, session: str | None = None) -> list[bytes]:
    if response.clicked is None:
        return []
    now = int(time.time() * 1000)
    session = session or f"sim-{user_id}"
    events = [{"event_id": f"{prefix}-{recommendation_id}-click", "user_id": user_id,
               "session_id": session, "event_type": "click", "timestamp": now,
               "properties": {"product_id": response.clicked,
                              "recommendation_id": recommendation_id}}]
    if response.bought:
        events.append({"event_id": f"{prefix}-{recommendation_id}-buy", "user_id": user_id,
                       "session_id": session, "event_type": "purchase", "timestamp": now + 1,
                       "properties": {"product_id": response.clicked,
                                      "price": response.price}})
    return [orjson.dumps(e) for e in events]


def _send(http, endpoints: Endpoints, events: list[bytes], result: TrafficResult,
          lock: threading.Lock, batch: int = 500) -> None:
    headers = {"Content-Type": "application/x-ndjson",
               "Authorization": f"Bearer {endpoints.write_key}"}
    for start in range(0, len(events), batch):
        body = b"\n".join(events[start:start + batch])
        for _ in range(20):
            answer = http.post(endpoints.collector_url, content=body, headers=headers)
            if answer.status_code not in (429, 503):
                break
            time.sleep(float(answer.headers.get("Retry-After", "1")))
        with lock:
            if answer.status_code == 202:
                result.events_sent += answer.json()["accepted"]
            else:
                result.events_refused += len(events[start:start + batch])
                log.warning("collector answered %s: %s", answer.status_code,
                            answer.text[:300])
