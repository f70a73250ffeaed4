"""Client input checks: every refusal names the field, the allowed values and what came."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from recsys.core.errors import RecsysError

MAX_ID_LENGTH = 256


class RequestError(RecsysError):
    """A client's mistake: answered 400 with the field named."""

    status_code = 400


@dataclass(frozen=True)
class RecommendRequest:
    user_id: str
    k: int
    exclude: tuple[str, ...] = ()
    category: str | None = None
    explain: bool = False
    """Return `rules_applied` (what stock and promotions changed) with the list."""


def check_shape(shape: Iterable[int], count: int, field: str) -> None:
    """A tensor's shape must describe exactly the values it holds (its product is their
    number): a shape of [3] over one id, or a huge or negative one, is refused."""
    dims = list(shape)
    if any(dim < 0 for dim in dims) or math.prod(dims) != count:
        raise RequestError(f"input {field!r} has shape {dims} but holds {count} "
                           f"value{'s' if count != 1 else ''}"[:300])


def check_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise RequestError(f"{field} must be at most {MAX_ID_LENGTH} characters, "
                           f"got {len(value)}")
    return value.strip()


def check_k(value: object, max_k: int, field: str = "k") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{field} must be an integer from 1 to {max_k}, got {value!r}")
    if not 1 <= value <= max_k:
        raise RequestError(f"{field} must be from 1 to {max_k}, got {value}")
    return value


def check_exclude(value: object, max_items: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise RequestError(f"exclude must be a list of item id strings, got {value!r}"[:300])
    if len(value) > max_items:
        raise RequestError(f"exclude may hold at most {max_items} items, got {len(value)}")
    return tuple(value)


def check_category(value: object) -> str | None:
    if value is None:
        return None
    return check_id(value, "category")


def check_flag(value: object, field: str) -> bool:
    """A yes/no option: a boolean, or its text in a query string (true/false, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise RequestError(f"{field} must be true or false, got {value!r}"[:300])
