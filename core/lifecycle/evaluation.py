"""What the evaluate step hands the gate: every candidate's metrics, the popularity
baseline's, the re-evaluated champion's and the paired bootstrap, on one holdout.

The evaluate step writes `EvaluationRecord.model_dump(mode="json")`; the gate reads it back
with `EvaluationRecord.model_validate`, so a malformed artifact is refused naming the field.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

Metrics = dict[str, float]
"""Metric name -> value."""


class PairedBootstrap(BaseModel):
    """Bootstrap of the mean per-user difference candidate - reference on the same users."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    """The metric compared (the gate's primary metric)."""
    difference: float
    """Mean per-user difference, candidate minus reference."""
    low: float
    """Lower bound of the interval."""
    high: float
    """Upper bound of the interval."""
    confidence: float = Field(gt=0, lt=1)
    """Confidence of the interval (0.95)."""
    samples: int | None = None
    """Bootstrap resamples drawn."""
    users: int | None = None
    """Users compared (a user missing on one side scores 0 there)."""


class CandidateResult(BaseModel):
    """One trained candidate: its metrics and where it was logged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: Metrics
    run_id: str | None = None
    """The MLflow run that trained it."""
    model_uri: str | None = None
    """The logged model the gate registers."""


class ChampionResult(BaseModel):
    """The current champion, re-evaluated on the same holdout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    metrics: Metrics


class EvaluationRecord(BaseModel):
    """The evaluate step's artifact, which the gate reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    primary_metric: str
    """The metric the best candidate was chosen by."""
    candidates: dict[str, CandidateResult] = Field(min_length=1)
    best: str
    """The name of the candidate with the highest primary metric."""
    baseline: Metrics
    """The default popularity model's metrics (the reference when there is no champion)."""
    champion: ChampionResult | None = None
    """None before any model was promoted."""
    paired_bootstrap: PairedBootstrap | None = None
    """Best candidate minus the reference (champion, else baseline); None when the primary
    metric has no per-user values."""
    holdout_rows: int = Field(ge=0)
    holdout_users: int = Field(ge=0)

    @model_validator(mode="after")
    def _best_is_a_candidate(self) -> EvaluationRecord:
        if self.best not in self.candidates:
            raise ValueError(f"best {self.best!r} is not among the candidates "
                             f"{sorted(self.candidates)}")
        return self

    @property
    def best_candidate(self) -> CandidateResult:
        return self.candidates[self.best]
