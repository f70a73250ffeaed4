"""Shopping sessions: a view -> cart -> purchase funnel steered by hidden tastes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns, EventType
from recsys.core.data.synthetic.catalogue import Catalogue, Customers

C = Columns
MAX_VIEWS = 12
MEAN_VIEWS = 4.0
EVENTS_PER_SESSION = 5.0  # measured on the funnel below; only sizes the first draw
SESSION_CHUNK = 4096
SOURCES = np.array(["direct", "google", "facebook", "instagram", "email", "affiliate"])
SOURCE_P = np.array([0.35, 0.3, 0.12, 0.1, 0.08, 0.05])
CAMPAIGNS = np.array(["", "autumn_sale", "new_arrivals", "retargeting"])
HOUR_WEIGHTS = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 3.5, 3.5, 3.5, 4, 3.5, 3.5, 3.5,
                         3.5, 4, 5, 6, 6.5, 6, 4, 2], dtype=float)


def generate_events(rng: np.random.Generator, n_events: int, catalogue: Catalogue,
                    customers: Customers, start: pd.Timestamp, days: int,
                    taste_strength: float) -> pd.DataFrame:
    """Exactly `n_events` events, sorted by time."""
    n_sessions = int(n_events / EVENTS_PER_SESSION * 1.3) + 10
    frames, total, offset = [], 0, 0
    while total < n_events:
        frame = _sessions(rng, n_sessions, offset, catalogue, customers, start, days,
                          taste_strength)
        frames.append(frame)
        total += len(frame)
        offset += n_sessions
        n_sessions = max(int((n_events - total) / EVENTS_PER_SESSION * 1.3) + 10, 10)
    events = pd.concat(frames, ignore_index=True)
    # keep whole sessions in draw order (start times are random, so this is unbiased)
    events = events.sort_values(["_session", C.timestamp], kind="stable").head(n_events)
    return events.sort_values(C.timestamp, kind="stable").reset_index(drop=True)


def _sessions(rng, n_sessions, offset, catalogue: Catalogue, customers: Customers, start,
              days, taste_strength) -> pd.DataFrame:
    n_users = len(customers.user_ids)
    user = rng.choice(n_users, size=n_sessions, p=customers.activity)
    u = rng.random(n_sessions)
    category = (customers.affinity_cdf[user] < u[:, None]).sum(axis=1)
    category = np.minimum(category, catalogue.centres.shape[0] - 1)
    views = np.minimum(rng.geometric(1.0 / MEAN_VIEWS, n_sessions), MAX_VIEWS)
    items = np.full((n_sessions, MAX_VIEWS), -1, dtype=np.int64)
    affinity = np.zeros((n_sessions, MAX_VIEWS))
    log_pop = np.log(catalogue.popularity)
    scale = taste_strength / np.sqrt(catalogue.vectors.shape[1])
    for cat in np.unique(category):
        in_cat = np.flatnonzero(catalogue.category == cat)
        sess = np.flatnonzero(category == cat)
        if in_cat.size == 0:
            continue
        take = min(MAX_VIEWS, in_cat.size)
        for lo in range(0, sess.size, SESSION_CHUNK):
            chunk = sess[lo:lo + SESSION_CHUNK]
            taste = customers.vectors[user[chunk]] @ catalogue.vectors[in_cat].T * scale
            noisy = taste + log_pop[in_cat] + rng.gumbel(size=taste.shape)
            top = np.argpartition(-noisy, take - 1, axis=1)[:, :take] if take < in_cat.size \
                else np.tile(np.arange(in_cat.size), (chunk.size, 1))
            order = np.take_along_axis(noisy, top, axis=1).argsort(axis=1)[:, ::-1]
            top = np.take_along_axis(top, order, axis=1)
            items[chunk, :take] = in_cat[top]
            affinity[chunk, :take] = np.take_along_axis(taste, top, axis=1)
        views[sess] = np.minimum(views[sess], take)
    return _funnel(rng, user, items, affinity, views, offset, customers, catalogue, start, days)


def _funnel(rng, user, items, affinity, views, offset, customers, catalogue, start, days):
    n_sessions = user.size
    mask = np.arange(MAX_VIEWS)[None, :] < views[:, None]
    sess_idx, pos = np.nonzero(mask)
    item = items[sess_idx, pos]
    z = affinity[sess_idx, pos]
    z = (z - z.mean()) / (z.std() + 1e-9)

    day = rng.integers(0, days, n_sessions)
    hour = rng.choice(24, size=n_sessions, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    session_start = (start.value // 10**6 + day * 86_400_000 + hour * 3_600_000
                     + rng.integers(0, 3_600_000, n_sessions))
    gaps = rng.exponential(45_000, size=item.size).astype(np.int64) + 2_000
    view_ts = session_start[sess_idx] + _cumsum_by_group(gaps, sess_idx)

    cart = rng.random(item.size) < _sigmoid(-2.6 + 1.4 * z)
    cart_ts = view_ts + rng.exponential(20_000, item.size).astype(np.int64) + 1_000
    bought = cart & (rng.random(item.size) < 0.45)
    buy_ts = cart_ts + rng.exponential(90_000, item.size).astype(np.int64) + 5_000
    removed = cart & ~bought & (rng.random(item.size) < 0.3)
    rated = bought & (rng.random(item.size) < 0.3)
    rating = np.clip(np.round(3.4 + 1.1 * z + rng.normal(0, 0.7, item.size)), 1, 5)

    parts = [
        (np.ones(item.size, bool), view_ts, EventType.view.value),
        (cart, cart_ts, EventType.add_to_cart.value),
        (removed, cart_ts + 60_000, EventType.remove_from_cart.value),
        (bought, buy_ts, EventType.purchase.value),
        (rated, buy_ts + 3_600_000, EventType.rating.value),
    ]
    pieces = []
    for keep, ts, kind in parts:
        idx = np.flatnonzero(keep)
        pieces.append(pd.DataFrame({
            "_session": sess_idx[idx] + offset, "_user": user[sess_idx[idx]],
            "_item": item[idx], C.event_type: kind, "_ts": ts[idx],
            C.rating: rating[idx] if kind == EventType.rating.value else np.nan,
        }))
    frame = pd.concat(pieces, ignore_index=True)
    source = rng.choice(len(SOURCES), size=n_sessions, p=SOURCE_P)
    campaign = np.where(SOURCES[source] == "direct", 0, rng.integers(0, len(CAMPAIGNS), n_sessions))
    s = frame["_session"].to_numpy() - offset
    u = frame["_user"].to_numpy()
    i = frame["_item"].to_numpy()
    frame[C.timestamp] = pd.to_datetime(frame.pop("_ts"), unit="ms", utc=True)
    frame[C.user_id] = customers.user_ids[u]
    frame[C.item_id] = catalogue.item_ids[i]
    frame[C.session_id] = pd.Series(frame["_session"]).map("s{:08d}".format)
    frame[C.price] = catalogue.price[i]
    frame[C.category] = catalogue.category_codes[catalogue.category[i]]
    frame[C.brand] = catalogue.brand[i]
    frame[C.device_type] = customers.device[u]
    frame[C.segment] = customers.segment[u]
    frame[C.login_status] = np.where(customers.logged_in[u], "logged_in", "guest")
    frame[C.utm_source] = SOURCES[source[s]]
    frame[C.utm_campaign] = CAMPAIGNS[campaign[s]]
    frame[C.referrer] = np.where(SOURCES[source[s]] == "direct", "",
                                 "https://" + SOURCES[source[s]] + ".com/")
    frame[C.page_url] = "https://shop.example.com/product/" + frame[C.item_id]
    return frame.drop(columns=["_user", "_item"])


def _cumsum_by_group(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at every group (groups sorted, as np.nonzero gives)."""
    total = np.cumsum(values)
    first = np.r_[True, groups[1:] != groups[:-1]]
    starts = np.flatnonzero(first)
    base = np.repeat(total[starts] - values[starts], np.diff(np.r_[starts, values.size]))
    return total - base


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
