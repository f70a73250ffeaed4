"""The promotion gate: a pure function of two metric sets and a policy."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class GatePolicy(BaseModel):
    """When a candidate may replace the champion."""

    model_config = ConfigDict(extra="forbid")

    primary_metric: str = "ndcg_at_10"
    """The metric that must improve."""
    min_relative_improvement: float = Field(0.01, ge=0)
    """Required relative gain on the primary metric (0.01 = +1%)."""
    guardrails: dict[str, float] = Field(default_factory=lambda: {
        "coverage_at_10": 0.10, "recall_at_20": 0.02})
    """Metric -> largest allowed relative regression (0.10 = may drop by 10%)."""
    require_significant: bool = False
    """Also require the lower bound of the paired bootstrap interval of candidate minus
    reference (same users, primary metric) to be above zero."""


DEFAULT_POLICY = GatePolicy()
"""The gate's defaults; pipeline parameters and CLI options take theirs from here."""


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


def decide(candidate: Mapping[str, float], reference: Mapping[str, float], policy: GatePolicy,
           against: str = "champion", paired: Mapping | None = None) -> Decision:
    """Promote only when the primary metric improves enough and no guardrail regresses too far.

    `reference` holds the champion's metrics on the same holdout, or the popularity
    baseline's when there is no champion yet (`against` names which). `paired` is the paired
    bootstrap of the per-user difference (difference, low, high, confidence), required
    when the policy asks for a significant improvement.
    """
    metric = policy.primary_metric
    reasons: list[str] = []
    for name in [metric, *policy.guardrails]:
        for label, metrics in (("candidate", candidate), (against, reference)):
            if name not in metrics or metrics[name] is None or math.isnan(metrics[name]):
                reasons.append(f"{label} has no value for {name}")
    if reasons:
        return Decision(False, reasons, against, metric)
    new, old = float(candidate[metric]), float(reference[metric])
    gain = relative_change(new, old)
    ok = gain >= policy.min_relative_improvement and new > old
    reasons.append(f"{metric} {new:.4f} vs {against} {old:.4f}: {gain:+.2%} "
                   f"({'meets' if ok else 'below'} the required "
                   f"{policy.min_relative_improvement:+.2%})")
    for name, allowed in policy.guardrails.items():
        change = relative_change(float(candidate[name]), float(reference[name]))
        held = change >= -allowed
        ok &= held
        reasons.append(f"guardrail {name} {float(candidate[name]):.4f} vs "
                       f"{float(reference[name]):.4f}: {change:+.2%} "
                       f"({'within' if held else 'exceeds'} the allowed -{allowed:.0%})")
    if policy.require_significant:
        if not paired or paired.get("metric", metric) != metric:
            ok = False
            reasons.append(f"significance required but no paired bootstrap of {metric} "
                           f"against {against}")
        else:
            significant = paired["low"] > 0
            ok &= significant
            reasons.append(f"paired bootstrap {metric} difference {paired['difference']:+.4f},"
                           f" {paired['confidence']:.0%} CI [{paired['low']:+.4f}, "
                           f"{paired['high']:+.4f}] ({'above' if significant else 'not above'}"
                           f" zero)")
    return Decision(bool(ok), reasons, against, metric, new, old, gain)
