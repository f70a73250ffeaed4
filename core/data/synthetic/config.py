"""Typed configuration of the synthetic shop."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class DirtConfig(BaseModel):
    """Rates (share of clean events) of each kind of bad input to inject."""

    model_config = ConfigDict(extra="forbid")

    duplicates: float = Field(0.0, ge=0, le=1)
    """Re-sent events: half exact copies (same event_id), half resent within a minute."""
    missing_price: float = Field(0.0, ge=0, le=1)
    """Events whose price is blank."""
    missing_category: float = Field(0.0, ge=0, le=1)
    """Events whose category is blank."""
    unknown_event_type: float = Field(0.0, ge=0, le=1)
    """Events with an event type no reader knows."""
    malformed: float = Field(0.0, ge=0, le=1)
    """Lines that do not parse (broken JSON, wrong field count, unparseable timestamp)."""
    future_timestamp: float = Field(0.0, ge=0, le=1)
    """Events stamped months in the future (a client clock gone wrong)."""


class ShopConfig(BaseModel):
    """Size and shape of a generated shop; the same config and seed give the same data."""

    model_config = ConfigDict(extra="forbid")

    events: int = Field(200_000, gt=0)
    """Clean events to generate (dirt comes on top)."""
    seed: int = 42
    """Random seed: every draw derives from it."""
    days: int = Field(30, gt=0)
    """Length of the period the events are spread over."""
    end: datetime | None = None
    """End of the period (UTC); None means today at 00:00 UTC."""
    users: int | None = Field(None, gt=0)
    """Number of users; None scales with events (one per 20 events, 100..200k)."""
    items: int | None = Field(None, gt=0)
    """Catalogue size; None scales with events (one per 40 events, 200..50k)."""
    latent_dim: int = Field(16, gt=0)
    """Dimension of the hidden tastes that make collaborative signal."""
    taste_strength: float = Field(2.5, ge=0)
    """How strongly a user's taste steers which items they look at."""
    dirt: DirtConfig = Field(default_factory=DirtConfig)
    """Bad input to inject."""

    @property
    def n_users(self) -> int:
        return self.users or int(min(max(self.events // 20, 100), 200_000))

    @property
    def n_items(self) -> int:
        return self.items or int(min(max(self.events // 40, 200), 50_000))
