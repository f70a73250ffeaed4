"""The promotion gate: a pure function of two metric sets and a policy."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from recsys.core.lifecycle.evaluation import PairedBootstrap

AllowedDrop = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class GatePolicy(BaseModel):
    """When a candidate may replace the champion."""

    model_config = ConfigDict(extra="forbid")

    primary_metric: str = "ndcg_at_10"
    """The metric that must improve."""
    min_relative_improvement: float = Field(0.01, ge=0, allow_inf_nan=False)
    """Required relative gain on the primary metric (0.01 = +1%)."""
    guardrails: dict[str, AllowedDrop] = Field(default_factory=lambda: {
        "coverage_at_10": 0.10, "recall_at_20": 0.02, "session_mrr_at_20": 0.05})
    """Metric -> largest allowed relative regression (0.10 = may drop by 10%).
    `session_mrr_at_20` is the live-session answer's next-item MRR@20 on the holdout's
    sessions (the session model's, `components/evaluate/sessions.py`)."""
    require_significant: bool = False
    """Also require the lower bound of the paired bootstrap interval of candidate minus
    reference (same users, primary metric) to be above zero."""


DEFAULT_POLICY = GatePolicy()
"""The gate's defaults; the pipeline's `gate_policy` parameter and the CLI options take
theirs from here."""


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and every reason that led there."""

    promote: bool
    reasons: list[str] = field(default_factory=list)
    against: str = "champion"
    primary_metric: str = ""
    candidate_value: float | None = None
    reference_value: float | None = None
    relative_improvement: float | None = None


def relative_change(new: float, old: float) -> float:
    if old == 0:
        return 0.0 if new == 0 else math.inf
    return (new - old) / abs(old)


def decide(candidate: Mapping[str, float | None], reference: Mapping[str, float | None],
           policy: GatePolicy, against: str = "champion",
           paired: PairedBootstrap | None = None) -> Decision:
    """Promote only when the primary metric improves enough and no guardrail regresses too far.

    `reference` holds the champion's metrics on the same holdout, or the popularity
    baseline's when there is no champion yet (`against` names which). `paired` is the paired
    bootstrap of the per-user difference, required when the policy asks for a significant
    improvement.
    """
    metric = policy.primary_metric
    names = [metric, *policy.guardrails]
    new_values = {name: _value(candidate, name) for name in names}
    old_values = {name: _value(reference, name) for name in names}
    reasons = [f"{label} has no value for {name}" for name in names
               for label, values in (("candidate", new_values), (against, old_values))
               if values[name] is None]
    if reasons:
        return Decision(False, reasons, against, metric)
    # every value is known from here on
    ours = {name: value for name, value in new_values.items() if value is not None}
    theirs = {name: value for name, value in old_values.items() if value is not None}
    new, old = ours[metric], theirs[metric]
    gain = relative_change(new, old)
    ok = gain >= policy.min_relative_improvement and new > old
    reasons.append(f"{metric} {new:.4f} vs {against} {old:.4f}: {gain:+.2%} "
                   f"({'meets' if ok else 'below'} the required "
                   f"{policy.min_relative_improvement:+.2%})")
    for name, allowed in policy.guardrails.items():
        change = relative_change(ours[name], theirs[name])
        held = change >= -allowed
        ok &= held
        reasons.append(f"guardrail {name} {ours[name]:.4f} vs {theirs[name]:.4f}: {change:+.2%} "
                       f"({'within' if held else 'exceeds'} the allowed -{allowed:.0%})")
    if policy.require_significant:
        if paired is None or paired.metric != metric:
            ok = False
            reasons.append(f"significance required but no paired bootstrap of {metric} "
                           f"against {against}")
        else:
            significant = paired.low > 0
            ok &= significant
            reasons.append(f"paired bootstrap {metric} difference {paired.difference:+.4f},"
                           f" {paired.confidence:.0%} CI [{paired.low:+.4f}, "
                           f"{paired.high:+.4f}] ({'above' if significant else 'not above'}"
                           f" zero)")
    return Decision(bool(ok), reasons, against, metric, new, old, gain)


def _value(metrics: Mapping[str, float | None], name: str) -> float | None:
    """The metric's value, None when it is missing, None or NaN."""
    value = metrics.get(name)
    return None if value is None or math.isnan(value) else float(value)

