"""What an online experiment is: a typed, validated definition.

An experiment splits the users of one surface (`recommend`) between variants. Each variant
serves a target: a named strategy (`popularity`), a registry alias (`champion`,
`challenger`, `previous`) or a registry version number. Aliases are pinned to the version
they name when the experiment starts (`Variant.version`), so a champion that moves during
the test does not change what a variant serves.

Weights are fixed for the experiment's life (changing them would move users between
variants); what may grow is `coverage`, the share of users in the experiment, which only
adds users (`recsys.experiments.assignment` says why no one moves).
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsys.core.errors import ConfigError

STRATEGIES = ("popularity",)
"""Variant targets that are not registry versions."""
ALIASES = ("champion", "challenger", "previous")
Metric = Literal["ctr", "conversion", "aov", "revenue_per_user", "clicks_per_user",
                 "dwell_time"]
METRICS: tuple[str, ...] = get_args(Metric)
"""What an experiment can measure (`recsys.experiments.analysis` defines each)."""
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    """Short name used in answers, the exposure log and the report (`control`, `a`)."""
    target: str
    """`popularity`, a registry alias or a registry version number."""
    weight: float = Field(gt=0)
    """Relative share of the experiment's users (weights need not sum to 100)."""
    version: str | None = None
    """The registry version served (aliases resolved at start); None for a strategy."""

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not LABEL.match(value):
            raise ValueError(f"variant label {value!r}: lowercase letters, digits, - and _ "
                             "(at most 31)")
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        if value not in STRATEGIES and value not in ALIASES and not value.isdigit():
            raise ValueError(f"variant target {value!r}: one of {', '.join(STRATEGIES)}, an "
                             f"alias ({', '.join(ALIASES)}) or a version number")
        return value

    @property
    def is_strategy(self) -> bool:
        return self.target in STRATEGIES


class Guardrail(BaseModel):
    """A metric that must not get worse by more than `margin` (relative): tested one-sided
    for non-inferiority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Metric
    margin: float = Field(0.02, gt=0, lt=1)
    """Largest relative loss tolerated (0.02: the variant may be at most 2% worse)."""


class ExperimentDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    surface: Literal["recommend"] = "recommend"
    """Where the split applies; one running experiment per surface."""
    salt: str = ""
    """Seed of the assignment hash; default the name (a new experiment reshuffles users)."""
    variants: tuple[Variant, ...]
    control: str = ""
    """Label the others are compared against; default the first variant."""
    coverage: float = Field(1.0, gt=0, le=1)
    """Share of (non-holdout) users in the experiment; may only grow while it runs."""
    holdout: float = Field(0.0, ge=0, lt=1)
    """Share of users kept out of every variant for its life (served the champion)."""
    excluded_users: tuple[str, ...] = ()
    """Ids never assigned (staff, bots, test accounts)."""
    primary_metric: Metric = "ctr"
    secondary_metrics: tuple[str, ...] = ("conversion", "aov", "revenue_per_user")
    guardrails: tuple[Guardrail, ...] = (Guardrail(metric="conversion", margin=0.05),)
    minimum_users: int = Field(1000, ge=1)
    """Users per variant before any verdict is given."""
    target_lift: float = Field(0.05, gt=0)
    """Relative lift of the primary metric the test is sized for (power, MDE)."""
    alpha: float = Field(0.05, gt=0, lt=0.5)
    power: float = Field(0.8, gt=0.5, lt=1)
    sequential: bool = False
    """Group-sequential testing (alpha spending): a look may be taken any day."""
    planned_users: int | None = Field(None, ge=1)
    """Users per variant at which a sequential test ends (its information = 1)."""
    attribution_hours: float = Field(24.0, gt=0)
    """Window after an exposure in which a cart or purchase of a shown item counts."""
    starts_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    ends_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"experiment name {value!r}: lowercase letters, digits, - and _ "
                             "(at most 63), starting with a letter or digit")
        return value

    @field_validator("secondary_metrics")
    @classmethod
    def _metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [m for m in value if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; known: {', '.join(METRICS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentDefinition:
        labels = [v.label for v in self.variants]
        if len(self.variants) < 2:
            raise ValueError("an experiment needs at least two variants")
        if len(set(labels)) != len(labels):
            raise ValueError(f"variant labels repeat: {labels}")
        if not self.salt:
            self.salt = self.name
        if not self.control:
            self.control = labels[0]
        if self.control not in labels:
            raise ValueError(f"control {self.control!r} is not a variant ({labels})")
        if self.sequential and self.planned_users is None:
            self.planned_users = self.minimum_users
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(v.label for v in self.variants)

    @property
    def metrics(self) -> list[str]:
        """The metrics compared: the primary first, then the other secondary ones."""
        return [self.primary_metric, *[m for m in self.secondary_metrics
                                       if m != self.primary_metric]]

    def variant(self, label: str) -> Variant:
        for variant in self.variants:
            if variant.label == label:
                return variant
        raise ConfigError(f"experiment {self.name!r} has no variant {label!r}")

    def shares(self) -> dict[str, float]:
        """Expected share of assigned users per variant (weights normalised)."""
        total = sum(v.weight for v in self.variants)
        return {v.label: v.weight / total for v in self.variants}

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


def parse_variants(spec: str) -> tuple[Variant, ...]:
    """`control=popularity:30,a=champion:35,b=7:35` -> variants (label=target:weight)."""
    variants = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        label, equals, rest = part.partition("=")
        target, colon, weight = rest.rpartition(":")
        if not equals or not colon or not label or not target:
            raise ConfigError(f"variant {part!r}: expected label=target:weight")
        try:
            variants.append(Variant(label=label.strip(), target=target.strip(),
                                    weight=float(weight)))
        except ValueError as exc:
            raise ConfigError(f"variant {part!r}: {exc}") from exc
    if not variants:
        raise ConfigError("no variants given (label=target:weight,...)")
    return tuple(variants)


def parse_guardrails(specs: list[str]) -> tuple[Guardrail, ...]:
    """`["conversion:0.05"]` -> guardrails (METRIC:MARGIN, the margin relative)."""
    found = []
    for spec in specs:
        metric, colon, margin = spec.partition(":")
        try:
            if not colon:
                raise ValueError("no ':'")
            found.append(Guardrail(metric=metric, margin=float(margin)))
        except ValueError as exc:
            raise ConfigError(f"guardrail {spec!r}: expected METRIC:MARGIN with a margin "
                              f"in (0, 1), e.g. conversion:0.05 ({exc})") from exc
    return tuple(found)
