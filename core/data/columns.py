"""Column names and event vocabulary shared by every step.

Training, Feast join keys, the serving codec and the Evidently column mapping all
use these constants, so a column is renamed in exactly one place.
"""
from __future__ import annotations

from enum import Enum

POPULARITY_SCORE = "popularity_score"
"""The item_stats feature holding an item's recency-weighted popularity (the popularity
model ranks by it). Here, not beside the feature tables: a model's loader (serving's
environments included) must not need pyarrow."""


class Columns:
    """Canonical column names."""

    event_id = "event_id"
    user_id = "user_id"
    item_id = "item_id"
    session_id = "session_id"
    event_type = "event_type"
    timestamp = "timestamp"
    price = "price"
    category = "category"
    brand = "brand"
    rating = "rating"
    device_type = "device_type"
    referrer = "referrer"
    utm_source = "utm_source"
    utm_campaign = "utm_campaign"
    segment = "segment"
    login_status = "login_status"
    page_url = "page_url"
    weather_status = "weather_status"
    temperature = "temperature"
    time_of_day = "time_of_day"
    day_of_week = "day_of_week"
    query = "query"
    source = "source"
    recommendation_id = "recommendation_id"
    extra = "extra"

    # lake bookkeeping
    event_date = "event_date"
    parse_error = "parse_error"
    reason = "reason"
    raw = "raw"
    quarantine_id = "quarantine_id"

    # modelling
    weight = "weight"
    score = "score"
    rank = "rank"


class EventType(str, Enum):
    """The event types every reader maps its own names onto."""

    view = "view"
    add_to_cart = "add_to_cart"
    remove_from_cart = "remove_from_cart"
    purchase = "purchase"
    rating = "rating"
    search = "search"
    click = "click"


EVENT_TYPES: tuple[str, ...] = tuple(e.value for e in EventType)

# Event types that name no item (their item_id may be empty).
ITEMLESS_EVENT_TYPES: frozenset[str] = frozenset({EventType.search.value})

# Source vocabularies -> canonical event type. Names already canonical map to themselves.
EVENT_TYPE_ALIASES: dict[str, str] = {
    **{e: e for e in EVENT_TYPES},
    "addtocart": EventType.add_to_cart.value,
    "cart": EventType.add_to_cart.value,
    "add-to-cart": EventType.add_to_cart.value,
    "removefromcart": EventType.remove_from_cart.value,
    "remove": EventType.remove_from_cart.value,
    "transaction": EventType.purchase.value,
    "buy": EventType.purchase.value,
    "order": EventType.purchase.value,
    "page_view": EventType.view.value,
    "pageview": EventType.view.value,
    "product_view": EventType.view.value,
    "rate": EventType.rating.value,
    "product_click": EventType.click.value,
    "search_query": EventType.search.value,
}

# Columns every event must carry to be usable at all.
REQUIRED_COLUMNS: tuple[str, ...] = (
    Columns.event_id,
    Columns.user_id,
    Columns.item_id,
    Columns.event_type,
    Columns.timestamp,
)
