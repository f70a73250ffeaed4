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

Traffic goes through the real HTTP surfaces: GET /recommend/{user} on the service (its
token), POST /events on the collector (its write key) with `click` events naming the
list's `recommendation_id` and `purchase` events with their price.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import orjson

from recsys.core.data.synthetic.catalogue import make_catalogue, make_customers
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.progress import progress

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


def audience_of(config: ShopConfig) -> Audience:
    """The shop's users and items with their hidden tastes, drawn exactly as
    `generate_shop` draws them (same seed, same order)."""
    rng = np.random.default_rng(config.seed)
    catalogue = make_catalogue(rng, config.n_items, config.latent_dim)
    customers = make_customers(rng, config.n_users, catalogue)
    return Audience(customers.user_ids, customers.vectors, customers.activity,
                    {str(item): i for i, item in enumerate(catalogue.item_ids)},
                    catalogue.vectors, catalogue.price,
                    config.taste_strength / np.sqrt(config.latent_dim))


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
         k: int = 10, event_prefix: str = "sim") -> TrafficResult:
    """`days` simulated days (compressed: no waiting) of `requests_per_day` recommendation
    requests from users drawn by their activity; their clicks and purchases are posted to
    the collector (event ids `<event_prefix>-<recommendation_id>-click|buy`)."""
    import httpx

    rng = np.random.default_rng(seed)
    result = TrafficResult()
    lock = threading.Lock()
    draws = rng.choice(len(audience.user_ids), size=(days, requests_per_day),
                       p=audience.activity)

    def session(users: np.ndarray, worker_seed: int) -> None:
        local = np.random.default_rng(worker_seed)
        events: list[bytes] = []
        with httpx.Client(timeout=30) as http:
            for user in users:
                user_id = str(audience.user_ids[user])
                answer = http.get(f"{endpoints.service_url}/recommend/{user_id}",
                                  params={"top_k": k},
                                  headers={"Authorization": f"Bearer {endpoints.service_token}"})
                if answer.status_code != 200:
                    with lock:
                        result.failed_requests += 1
                    continue
                body = answer.json()
                response = respond(audience, behaviour, int(user), body["item_ids"], local)
                _tally(result, lock, body.get("variant") or "none", response)
                events += _events(user_id, body["recommendation_id"], response,
                                  event_prefix)
            _send(http, endpoints, events, result, lock)

    for day in progress(range(days), desc="simulated days", total=days):
        chunks = np.array_split(draws[day], clients)
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(session, chunks, [seed * 1000 + day * clients + c
                                            for c in range(clients)]))
        log.info("simulated day %d: %d requests, expected CTR %s", day + 1, result.requests,
                 {v: round(c, 4) for v, c in result.expected_ctr().items()})
    return result


def _tally(result: TrafficResult, lock: threading.Lock, variant: str,
           response: Response) -> None:
    with lock:
        result.requests += 1
        stats = result.per_variant.setdefault(variant, {
            "lists": 0, "clicked": 0, "purchases": 0, "click_probability": 0.0})
        stats["lists"] += 1
        stats["clicked"] += response.clicked is not None
        stats["purchases"] += response.bought
        stats["click_probability"] += response.list_click_probability


def _events(user_id: str, recommendation_id: str, response: Response,
            prefix: str) -> list[bytes]:
    if response.clicked is None:
        return []
    now = int(time.time() * 1000)
    session = f"sim-{user_id}"
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
