"""Events as the shop's front end sends them, validated with pydantic.

`parse_body` accepts one JSON object, a JSON array or NDJSON; `validate_events` checks each
event on its own so that one bad event is named (index, event_id, field, message) without
rejecting its neighbours, whatever it holds (a wrong type, a malformed signature, nesting
beyond MAX_EVENT_DEPTH). Valid events become flat canonical rows (the lake's columns, with
the timestamp in epoch milliseconds) - the form the bus carries. IP addresses and user agents
(`ip`, `userAgent`, `X-Forwarded-For`, ... at any depth) are dropped from the unknown fields
kept in `extra` and from dead letters.
"""
from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field
from typing import Annotated

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
)

from recsys.core.data.columns import EVENT_TYPE_ALIASES, ITEMLESS_EVENT_TYPES, Columns
from recsys.core.data.personal_data import is_personal_key, without_personal_data
from recsys.core.data.schema import MAX_EXTRA_BYTES
from recsys.core.errors import RecsysError
from recsys.streaming.user_binding import NO_BINDING, UserBinding

C = Columns
# Every free-text field is capped in length and refuses control characters (422 naming the
# field): what lands in the lake, the features and the reports stays plain, bounded text.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
Label = Annotated[str, StringConstraints(max_length=64, pattern=NO_CONTROL)]
Text = Annotated[str, StringConstraints(max_length=256, pattern=NO_CONTROL)]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=NO_CONTROL)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_CONTROL)]
MAX_DEAD_LETTER_RAW_BYTES = 8192
"""A dead letter keeps at most this much of the refused event (as text beyond it)."""
MAX_EVENT_DEPTH = 32
"""Deepest nesting of objects and arrays in one event (the schema needs 3): a deeper event is
refused on its own. JSON is read up to 1024 levels but written only up to 254, so without
this bound an unknown field nested deep enough could not be stored."""
TOO_DEEP = f"objects and arrays nested more than {MAX_EVENT_DEPTH} levels deep"
VISITOR_ID_FIELDS = ("anonymous_id", "anonymousId", "device_id", "deviceId")
"""Top-level fields (besides `session_id`, and `context.device.id`) a shop's front end may
send to name an anonymous visitor: what an unbound event's anonymous id is derived from."""
MIN_TIMESTAMP_MS = 946_684_800_000       # 2000-01-01: older values are seconds or garbage
MAX_TIMESTAMP_MS = 4_102_444_800_000     # 2100-01-01


class _Loose(BaseModel):
    """Fields the schema has no column for are kept (`extra`), never dropped."""

    model_config = ConfigDict(extra="allow")


class Page(_Loose):
    url: Url | None = None
    referrer: Url | None = None


class Device(_Loose):
    type: Label | None = None


class UserContext(_Loose):
    login_status: Label | None = None
    segment: Label | None = None

    @field_validator("login_status", mode="before")
    @classmethod
    def _flag_as_text(cls, value):
        """The rich JSON event sends a boolean; the lake keeps it as "true" / "false"."""
        return str(value).lower() if isinstance(value, bool) else value


class Campaign(_Loose):
    utm_source: Text | None = None
    utm_campaign: Text | None = None


class Weather(_Loose):
    status: Label | None = None
    temperature: float | None = Field(None, ge=-100, le=100)


class Temporal(_Loose):
    time_of_day: Label | None = None
    day_of_week: Label | None = None


class Context(_Loose):
    page: Page | None = None
    device: Device | None = None
    weather: Weather | None = None
    temporal: Temporal | None = None
    user: UserContext | None = None
    campaign: Campaign | None = None


class Properties(_Loose):
    product_id: Ident | None = None
    """Required, except on a search (which carries `query` instead)."""
    price: float | None = Field(None, ge=0, le=1e9)
    category: Text | None = None
    brand: Text | None = None
    rating: float | None = Field(None, ge=0, le=10)
    query: Text | None = None
    """A search's text."""
    source: Label | None = None
    """Where a click happened (e.g. `recommendations`, `search`, `category`)."""
    recommendation_id: Annotated[str, StringConstraints(max_length=128,
                                                        pattern=NO_CONTROL)] | None = None
    """The recommendation list a clicked item was shown in (serving's answer names it)."""

    @field_validator("product_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class RichEvent(_Loose):
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128,
                                               pattern=NO_CONTROL)]
    user_id: Ident
    session_id: Text | None = None
    event_type: str
    timestamp: int = Field(ge=MIN_TIMESTAMP_MS, le=MAX_TIMESTAMP_MS,
                           description="epoch milliseconds")
    context: Context | None = None
    properties: Properties
    user_signature: Text | None = None
    """The shop backend's signature of user_id (streaming/user_binding.py); not stored."""
    _unknown: dict = PrivateAttr()
    _extra_json: str | None = PrivateAttr()

    @field_validator("user_id", mode="before")
    @classmethod
    def _user_as_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("event_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        canonical = EVENT_TYPE_ALIASES.get(value.strip().lower())
        if canonical is None:
            raise ValueError(f"unknown event_type {value!r}; allowed: "
                             f"{sorted(set(EVENT_TYPE_ALIASES.values()))} (or their aliases)")
        return canonical

    def problems(self) -> list[dict]:
        """What a well-typed event still lacks, each with the field it concerns: an item
        (a query, for a search), and unknown fields within MAX_EXTRA_BYTES."""
        if _too_deep(self.unknown_fields(), MAX_EVENT_DEPTH):  # known fields have 3 levels
            return [{"field": "(event)", "message": TOO_DEEP}]
        found = []
        if self.event_type in ITEMLESS_EVENT_TYPES:
            if not self.properties.query:
                found.append({"field": "properties.query", "message": "a search needs its "
                                                                       "query text"})
        elif not self.properties.product_id:
            found.append({"field": "properties.product_id",
                          "message": f"a {self.event_type} event needs the product"})
        size = len(self.extra_json() or "")
        if size > MAX_EXTRA_BYTES:
            found.append({"field": "(fields beyond the schema)",
                          "message": f"{size} bytes as JSON; at most {MAX_EXTRA_BYTES} are "
                                     f"kept"})
        return found

    def unknown_fields(self) -> dict:
        """Every field the schema has no column for, nested as sent, without personal data."""
        private = self.__pydantic_private__  # plain dict: no per-call attribute machinery
        assert private is not None  # a dict: the model declares private attributes
        if "_unknown" not in private:
            private["_unknown"] = _extras(self)
        return private["_unknown"]

    def extra_json(self) -> str | None:
        """`unknown_fields` as JSON (None: none); call `problems` first (nesting)."""
        private = self.__pydantic_private__
        assert private is not None  # a dict: the model declares private attributes
        if "_extra_json" not in private:
            found = self.unknown_fields()
            private["_extra_json"] = orjson.dumps(
                found, option=orjson.OPT_SORT_KEYS).decode() if found else None
        return private["_extra_json"]

    def visitor_id(self) -> str | None:
        """The id the front end keeps for an anonymous visitor besides the session, if any
        (VISITOR_ID_FIELDS, `context.device.id`)."""
        extra = self.__pydantic_extra__ or {}
        device = self.context.device if self.context else None
        found = [extra.get(name) for name in VISITOR_ID_FIELDS]
        found.append((device.__pydantic_extra__ or {}).get("id") if device else None)
        return next((value for value in found if isinstance(value, str) and value), None)

    def to_row(self) -> dict:
        """The flat canonical row (lake column names; timestamp in epoch ms)."""
        ctx = self.context or Context()
        props = self.properties
        weather, temporal = ctx.weather or Weather(), ctx.temporal or Temporal()
        return {
            C.event_id: self.event_id, C.user_id: self.user_id,
            C.item_id: props.product_id, C.session_id: self.session_id,
            C.event_type: self.event_type, C.timestamp: self.timestamp,
            C.price: props.price, C.category: props.category, C.brand: props.brand,
            C.rating: props.rating,
            C.device_type: ctx.device.type if ctx.device else None,
            C.referrer: ctx.page.referrer if ctx.page else None,
            C.page_url: ctx.page.url if ctx.page else None,
            C.utm_source: ctx.campaign.utm_source if ctx.campaign else None,
            C.utm_campaign: ctx.campaign.utm_campaign if ctx.campaign else None,
            C.segment: ctx.user.segment if ctx.user else None,
            C.login_status: ctx.user.login_status if ctx.user else None,
            C.weather_status: weather.status, C.temperature: weather.temperature,
            C.time_of_day: temporal.time_of_day, C.day_of_week: temporal.day_of_week,
            C.query: props.query, C.source: props.source,
            C.recommendation_id: props.recommendation_id, C.extra: self.extra_json(),
        }


def _extras(model: BaseModel) -> dict:
    """A model's unknown fields, and those of the models inside it, nested by field name
    (the collector's hot path: attribute slots and a per-class list, no introspection),
    without IP addresses and user agents at any depth (recsys.core.data.personal_data)."""
    extra = model.__pydantic_extra__
    found = {key: without_personal_data(value) if isinstance(value, dict | list) else value
             for key, value in extra.items() if not _is_personal(key)} if extra else {}
    values = model.__dict__
    for name in _nested_fields(type(model)):
        value = values.get(name)
        if value is not None:
            inner = _extras(value)
            if inner:
                found[name] = inner
    return found


_is_personal = functools.lru_cache(maxsize=4096)(is_personal_key)
"""is_personal_key on the hot path: the same few field names arrive again and again."""


@functools.cache
def _nested_fields(model_class: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `model_class` that hold a model of this module (with extras of theirs)."""
    nested = []
    for name, info in model_class.model_fields.items():
        kinds = typing.get_args(info.annotation) or (info.annotation,)
        if any(isinstance(k, type) and issubclass(k, _Loose) for k in kinds):
            nested.append(name)
    return tuple(nested)


class BodyError(RecsysError, ValueError):
    """The request body as a whole cannot be read (not JSON, nested beyond 1024 levels, not
    UTF-8, empty)."""

    status_code = 400


def parse_body(body: bytes, content_type: str = "") -> list:
    """The events of a body: one JSON object, a JSON array of objects, or NDJSON."""
    text = body.strip()
    if not text:
        raise BodyError("body is empty: send one event, a JSON array or NDJSON lines")
    ndjson = "ndjson" in content_type or "jsonlines" in content_type
    if not ndjson:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if b"\n" not in text:
                raise BodyError(f"body is not valid JSON: {exc}") from exc
            ndjson = True
        else:
            return parsed if isinstance(parsed, list) else [parsed]
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise BodyError(f"NDJSON line {number} is not valid JSON: {exc}") from exc
    return events


@dataclass
class Rejected:
    index: int
    event_id: str | None
    errors: list[dict]
    raw: object

    def __post_init__(self) -> None:
        if isinstance(self.event_id, str):
            self.event_id = self.event_id[:128]
        # what the dead letter keeps: no personal data, and writable (nesting capped)
        self.raw = without_personal_data(_nesting_capped(self.raw, MAX_EVENT_DEPTH))
        text = orjson.dumps(self.raw, option=orjson.OPT_NON_STR_KEYS)
        if len(text) > MAX_DEAD_LETTER_RAW_BYTES:  # kept as a capped excerpt, not whole
            self.raw = {"truncated": text[:MAX_DEAD_LETTER_RAW_BYTES].decode(errors="ignore"),
                        "bytes": len(text)}

    def as_dict(self) -> dict:
        return {"index": self.index, "event_id": self.event_id, "errors": self.errors}

    @property
    def reason(self) -> str:
        return "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)


def _too_deep(value: object, limit: int) -> bool:
    """True when objects and arrays nest more than `limit` levels in `value` (a level at a
    time, containers only: iterative, and cheap on the collector's hot path)."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        if not level:
            return False
        level = [child for item in level
                 for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, dict | list)]
    return bool(level)


def _nesting_capped(value: object, limit: int) -> object:
    """`value` with every object or array deeper than `limit` levels replaced by a note
    (iterative: any depth orjson reads)."""
    root: list = [None]
    pending: list = [(value, root, 0, 1)]  # (source, parent, slot, depth)
    while pending:
        source, parent, slot, depth = pending.pop()
        if isinstance(source, dict | list) and depth > limit:
            parent[slot] = f"(nested deeper than {limit} levels)"
        elif isinstance(source, dict):
            parent[slot] = copy = dict.fromkeys(source)
            pending.extend((inner, copy, key, depth + 1) for key, inner in source.items())
        elif isinstance(source, list):
            parent[slot] = items = [None] * len(source)
            pending.extend((inner, items, i, depth + 1) for i, inner in enumerate(source))
        else:
            parent[slot] = source
    return root[0]


@dataclass
class Validated:
    rows: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    anonymized: int = 0
    """Rows kept under an anonymous id because their user signature did not bind them."""


@dataclass(frozen=True)
class TimeBounds:
    """Event times the collector trusts, relative to when it received the event: at most
    `max_ahead_ms` in the future (clock skew) and, unless None, at most `max_age_ms` old
    (older history is loaded with `extract`, not streamed)."""

    received_ms: int
    max_ahead_ms: int = 5 * 60_000
    max_age_ms: int | None = 7 * 86_400_000

    def problem(self, timestamp_ms: int) -> str | None:
        ahead = timestamp_ms - self.received_ms
        if ahead > self.max_ahead_ms:
            return (f"{ahead / 1000:.0f} s ahead of when the collector received it (at most "
                    f"{self.max_ahead_ms / 1000:.0f} s of clock skew)")
        if self.max_age_ms is not None and -ahead > self.max_age_ms:
            return (f"{-ahead / 86_400_000:.1f} days old; the collector takes events up to "
                    f"{self.max_age_ms / 86_400_000:g} days old (load history with extract)")
        return None


def validate_events(events: list, bounds: TimeBounds | None = None,
                    binding: UserBinding = NO_BINDING) -> Validated:
    """Each event checked on its own (every event ends in `rows` or `rejected`, whatever
    it holds); with `bounds`, event times outside them are refused; with an active `binding`,
    an event whose user signature does not bind its user_id is refused or kept anonymously
    (see recsys.streaming.user_binding): under its session, else under the visitor id the
    front end sends (VISITOR_ID_FIELDS), else under a random id of this request's own."""
    out = Validated()
    fresh = None
    for index, raw in enumerate(events):
        if not isinstance(raw, dict):
            out.rejected.append(Rejected(index, None, [{
                "field": "(event)", "message": f"an event must be a JSON object, got "
                                                f"{type(raw).__name__}"}], raw))
            continue
        event_id = raw.get("event_id")
        event_id = event_id if isinstance(event_id, str) else None
        try:
            event = RichEvent.model_validate(raw)
        except ValidationError as exc:
            errors = [{"field": ".".join(str(p) for p in error["loc"]) or "(event)",
                       "message": error["msg"]} for error in exc.errors()]
            out.rejected.append(Rejected(index, event_id, errors, raw))
            continue
        errors = event.problems()
        if errors:
            out.rejected.append(Rejected(index, event_id, errors, raw))
            continue
        row = event.to_row()
        problem = bounds.problem(row[C.timestamp]) if bounds is not None else None
        if problem:
            out.rejected.append(Rejected(index, event_id, [
                {"field": "timestamp", "message": problem}], raw))
            continue
        unbound = binding.problem(row[C.user_id], event.user_signature) \
            if binding.active else None
        if unbound and binding.mode == "require":
            out.rejected.append(Rejected(index, event_id, [
                {"field": "user_signature", "message": unbound}], raw))
            continue
        if unbound:
            visitor = event.visitor_id()
            if row[C.session_id] or visitor:
                row[C.user_id] = binding.anonymous_id(row[C.session_id], visitor)
            else:  # nothing names the visitor: the request's own random one
                fresh = fresh or binding.anonymous_id(None)
                row[C.user_id] = fresh
            out.anonymized += 1
        out.rows.append(row)
    return out
