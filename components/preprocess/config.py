"""Typed configuration of preprocess."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recsys.core.data.columns import EventType

DEFAULT_LOOKBACK_DAYS = 30.0
"""Days of training data before the holdout, by default (also the pipeline's parameter)."""


class PreprocessConfig(BaseModel):
    """How events become interactions, splits and feature tables."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(default_factory=lambda: {
        EventType.purchase.value: 5.0, EventType.rating.value: 4.0,
        EventType.add_to_cart.value: 3.0, EventType.view.value: 1.0,
        EventType.remove_from_cart.value: 0.0, EventType.click.value: 2.0,
        EventType.search.value: 0.0,
    })
    """Interaction weight per event type; 0 keeps the event out of the interactions. A click
    (on a listed item: a stronger signal than a view) weighs 2; a search names no item, so
    its weight applies only to searches that do carry one."""
    dedup_seconds: int = Field(60, ge=0)
    """Same user, item and type again within this many seconds is one event."""
    holdout_days: float = Field(7.0, gt=0)
    """The last this-many days of the window form the holdout."""
    lookback_days: float | None = Field(DEFAULT_LOOKBACK_DAYS, gt=0)
    """Training uses at most this many days before the holdout; None uses all."""
    popularity_half_life_days: float = Field(7.0, gt=0)
    """Half-life of the recency decay in the item popularity score."""
