"""The experiment's verdict from per-user outcomes: `summary.json`'s content.

Metrics (one definition each, over the users of a variant):
- `ctr`: clicked lists / lists shown (a ratio of sums: delta method);
- `conversion`: share of users with an attributed purchase;
- `aov`: attributed revenue / attributed orders (ratio: delta method);
- `revenue_per_user`, `clicks_per_user`: per-user means;
- `dwell_time`: seconds from a click on a list to the next action of the same visit, per
  click whose visit went on (a ratio of sums: delta method; `outcomes` defines it).
Per-user means are CUPED-adjusted with the pre-period (events and revenue before the start)
when that period has data. Every non-control variant is compared with the control on the
primary and secondary metrics, and every other variant with the variant serving the
champion (when one does) on the primary metric - a winner must beat production, not only
the control. Holm's correction runs over all of these comparisons, and
`significant` is judged on the corrected p-value (or, for a sequential test, on the
alpha-spending boundary at this look, with alpha split evenly over the comparisons).
Guardrails are one-sided non-inferiority tests. The chi-square on clicked vs not clicked
lists and Welch's t-test on per-user values are reported beside the z-test.

No p-value is given on data that cannot carry one: with fewer than `minimum_users` in an
arm the verdict is "not enough users", with a sample-ratio mismatch "SRM - do not trust".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from recsys.experiments import stats
from recsys.experiments.definition import ExperimentDefinition, Guardrail
from recsys.experiments.outcomes import UserOutcomes

RATIO_METRICS = {"ctr": ("clicked_lists", "exposures"), "aov": ("revenue", "orders"),
                 "dwell_time": ("dwell_seconds", "dwell_clicks")}
MEAN_METRICS = {"conversion": "converted", "revenue_per_user": "revenue",
                "clicks_per_user": "clicks"}
COVARIATES = {"conversion": "pre_events", "revenue_per_user": "pre_revenue",
              "clicks_per_user": "pre_events"}
NOT_ENOUGH_USERS, SRM_VERDICT = "not enough users", "SRM - do not trust"
WINNER, NO_WINNER = "winner", "no significant winner"


class Comparison(BaseModel):
    """One variant against another on one metric: a row of the summary's `comparisons`.
    Values that are not finite (or that untrustworthy data cannot carry) are None."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str
    against: str
    metric: str
    lift: float | None
    """Relative lift of `variant` over `against` (0.05 = +5%)."""
    absolute: float | None
    ci_low: float | None
    ci_high: float | None
    """Confidence interval of the relative lift."""
    z: float | None
    p_value_raw: float | None
    """The z-test's p-value before Holm's correction."""
    p_value: float | None
    """After Holm's correction over all comparisons."""
    significant: bool
    cuped: bool
    """Whether the per-user values were CUPED-adjusted."""
    chi_square_p: float | None = None
    """`ctr` only: chi-square on clicked vs not clicked lists."""
    welch_p: float | None = None
    """Per-user means only: Welch's t-test."""


class GuardrailCheck(BaseModel):
    """One variant's non-inferiority test on one guardrail metric: a row of the summary's
    `guardrails`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str
    metric: str
    margin: float
    """Largest relative loss allowed."""
    lift: float | None
    p_value: float | None
    passed: bool | None
    """None when the data cannot carry a p-value."""


@dataclass(frozen=True)
class _Test:
    """A comparison's statistics before the multiple-testing correction."""

    variant: str
    against: str
    metric: str
    result: stats.Comparison
    cuped: bool
    chi_square_p: float | None
    welch_p: float | None


@dataclass
class AnalysisInput:
    definition: ExperimentDefinition
    outcomes: UserOutcomes
    expected_shares: dict[str, float]
    previous_looks: list[float] = field(default_factory=list)
    """Information fractions of earlier looks of a sequential test."""


def analyze(data: AnalysisInput) -> dict:
    definition, users = data.definition, with_derived(data.outcomes.users)
    groups = {label: users[users["variant"] == label] for label in definition.labels}
    variants = {label: _describe(frame) for label, frame in groups.items()}
    srm = stats.sample_ratio_mismatch({k: len(v) for k, v in groups.items()},
                                      data.expected_shares)
    thin = [label for label, frame in groups.items() if len(frame) < definition.minimum_users]
    metrics = definition.metrics
    thetas = {metric: _theta(users, metric) for metric in MEAN_METRICS}
    tests = []
    for label in definition.labels:
        if label == definition.control:
            continue
        for metric in metrics:
            tests.append(_test(groups[label], groups[definition.control], label,
                               definition.control, metric, thetas, definition.alpha))
    production = champion_arm(definition)
    for label in definition.labels:
        if production in (None, definition.control, label) or label == definition.control:
            continue
        tests.append(_test(groups[label], groups[production], label, production,
                           definition.primary_metric, thetas, definition.alpha))
    trustworthy = not thin and not srm["flagged"]
    comparisons, sequential = _corrected(tests, definition, groups, data.previous_looks,
                                         trustworthy)
    guardrails = [_guardrail(groups[label], groups[definition.control], label, guard,
                             definition.alpha, trustworthy)
                  for label in definition.labels if label != definition.control
                  for guard in definition.guardrails]
    verdict, winner = _verdict(definition, comparisons, guardrails, thin, srm)
    return {
        "experiment": definition.name, "verdict": verdict, "winner": winner,
        "control": definition.control, "primary_metric": definition.primary_metric,
        "variants": variants, "comparisons": [c.model_dump() for c in comparisons],
        "guardrails": [g.model_dump() for g in guardrails],
        "srm": srm, "power": _power(groups, definition),
        "sequential": sequential,
        "data": {"users": int(len(users)), "crossovers": data.outcomes.crossovers,
                 "unmatched_clicks": data.outcomes.unmatched_clicks,
                 "unpriced_purchases": data.outcomes.unpriced_purchases,
                 "thin_variants": thin,
                 "cuped_theta": {m: _finite(t) for m, t in thetas.items()},
                 "dwell_time": "seconds from a click to the same user's next action "
                               "within 30 minutes (not the clicked item's page view); "
                               "clicks that end a visit have none"},
    }


def with_derived(users: pd.DataFrame) -> pd.DataFrame:
    """The per-user outcomes plus the columns metrics are computed from (`converted`)."""
    users = users.copy()
    users["converted"] = (users["orders"] > 0).astype(float)
    return users


def _describe(frame: pd.DataFrame) -> dict:
    exposures, clicked = frame["exposures"].sum(), frame["clicked_lists"].sum()
    orders, revenue = frame["orders"].sum(), frame["revenue"].sum()
    n = len(frame)
    return {"users": int(n), "exposures": int(exposures), "clicks": int(frame["clicks"].sum()),
            "clicked_lists": int(clicked), "carts": int(frame["carts"].sum()),
            "orders": int(orders), "revenue": round(float(revenue), 2),
            "ctr": _finite(clicked / exposures if exposures else math.nan),
            "conversion": _finite(frame["converted"].mean() if n else math.nan),
            "aov": _finite(revenue / orders if orders else math.nan),
            "revenue_per_user": _finite(revenue / n if n else math.nan),
            "clicks_per_user": _finite(frame["clicks"].mean() if n else math.nan),
            "dwell_clicks": int(frame["dwell_clicks"].sum()),
            "dwell_time": _finite(frame["dwell_seconds"].sum() / frame["dwell_clicks"].sum()
                                  if frame["dwell_clicks"].sum() else math.nan)}


def _theta(users: pd.DataFrame, metric: str) -> float:
    covariate = users[COVARIATES[metric]]
    if covariate.nunique() < 2:
        return 0.0  # no pre-period signal: CUPED would change nothing
    return stats.cuped_theta([users[MEAN_METRICS[metric]].to_numpy()], [covariate.to_numpy()])


def estimate(frame: pd.DataFrame, metric: str, theta: float = 0.0,
             covariate_mean: float = 0.0) -> stats.Estimate:
    if metric in RATIO_METRICS:
        numerator, denominator = RATIO_METRICS[metric]
        return stats.ratio_estimate(frame[numerator].to_numpy(), frame[denominator].to_numpy())
    values = frame[MEAN_METRICS[metric]].to_numpy(dtype=float)
    if theta:
        values = stats.cuped_adjust(values, frame[COVARIATES[metric]].to_numpy(), theta,
                                    covariate_mean)
    return stats.mean_estimate(values)


def _test(treated: pd.DataFrame, control: pd.DataFrame, label: str, against: str,
          metric: str, thetas: dict[str, float], alpha: float) -> _Test:
    theta = thetas.get(metric, 0.0)
    covariate_mean = 0.0
    if theta:
        both = pd.concat([treated, control])[COVARIATES[metric]]
        covariate_mean = float(both.mean())
    result = stats.compare(estimate(treated, metric, theta, covariate_mean),
                           estimate(control, metric, theta, covariate_mean), alpha)
    chi_square_p = welch_p = None
    if metric == "ctr":
        chi_square_p = stats.chi_square_2x2(
            int(treated["clicked_lists"].sum()), int(treated["exposures"].sum()),
            int(control["clicked_lists"].sum()), int(control["exposures"].sum()))[1]
    elif metric in MEAN_METRICS and len(treated) > 1 and len(control) > 1:
        welch_p = stats.welch(treated[MEAN_METRICS[metric]].to_numpy(),
                              control[MEAN_METRICS[metric]].to_numpy())[2]
    return _Test(label, against, metric, result, bool(theta), chi_square_p, welch_p)


def _corrected(tests: list[_Test], definition: ExperimentDefinition, groups: dict,
               previous_looks: list[float], trustworthy: bool
               ) -> tuple[list[Comparison], dict | None]:
    """The comparison rows after Holm's correction (or, for a sequential test, judged on the
    alpha-spending boundary at this look), and the sequential look's description."""
    adjusted = stats.holm([t.result.p_value for t in tests])
    sequential: dict | None = None
    boundary_z: float | None = None
    if definition.sequential and tests:
        smallest = min(len(frame) for frame in groups.values())
        planned = definition.planned_users
        if planned is None:  # cannot happen: the definition sets it for every sequential test
            raise ValueError(f"{definition.name}: a sequential test without planned_users")
        fraction = min(1.0, smallest / planned)
        looks = [f for f in previous_looks if f < fraction] + [fraction]
        boundary_z = stats.sequential_boundaries(looks, definition.alpha / len(tests))[-1]
        sequential = {"information_fraction": fraction, "looks": looks,
                      "boundary_z": boundary_z, "final_look": fraction >= 1.0}
    return [_row(test, float(p_adjusted), definition.alpha, boundary_z, trustworthy)
            for test, p_adjusted in zip(tests, adjusted)], sequential


def _row(test: _Test, p_adjusted: float, alpha: float, boundary_z: float | None,
         trustworthy: bool) -> Comparison:
    result = test.result
    if not trustworthy:
        p_raw = p_value = ci_low = ci_high = None
        significant = False
    else:
        p_raw, p_value, ci_low, ci_high = result.p_value, p_adjusted, result.ci_low, \
            result.ci_high
        if boundary_z is not None:
            significant = abs(result.z) >= boundary_z
        else:
            significant = math.isfinite(p_adjusted) and p_adjusted < alpha
    return Comparison(variant=test.variant, against=test.against, metric=test.metric,
                      lift=_finite(result.lift), absolute=_finite(result.absolute),
                      ci_low=_finite(ci_low), ci_high=_finite(ci_high), z=_finite(result.z),
                      p_value_raw=_finite(p_raw), p_value=_finite(p_value),
                      significant=bool(significant), cuped=test.cuped,
                      chi_square_p=_finite(test.chi_square_p), welch_p=_finite(test.welch_p))


def _guardrail(treated: pd.DataFrame, control: pd.DataFrame, label: str, guard: Guardrail,
               alpha: float, trustworthy: bool) -> GuardrailCheck:
    t, c = estimate(treated, guard.metric), estimate(control, guard.metric)
    lift = _finite(t.mean / c.mean - 1 if c.mean else math.nan)
    p_value = stats.non_inferiority_p(t, c, guard.margin) if trustworthy else None
    return GuardrailCheck(
        variant=label, metric=guard.metric, margin=guard.margin, lift=lift,
        p_value=_finite(p_value),
        passed=None if p_value is None else bool(math.isfinite(p_value) and p_value < alpha))


def _verdict(definition: ExperimentDefinition, comparisons: list[Comparison],
             guardrails: list[GuardrailCheck], thin: list[str], srm: dict
             ) -> tuple[str, str | None]:
    if srm["flagged"]:
        return SRM_VERDICT, None
    if thin:
        return NOT_ENOUGH_USERS, None
    broken = {g.variant for g in guardrails if not g.passed}
    production = champion_arm(definition)

    def beats(label: str, against: str) -> bool:
        return any(c.variant == label and c.against == against
                   and c.metric == definition.primary_metric and c.significant
                   and c.lift is not None and c.lift > 0 for c in comparisons)

    winners = [label for label in definition.labels
               if label != definition.control and label not in broken
               and beats(label, definition.control)
               and (production in (None, definition.control, label)
                    or beats(label, production))]
    if not winners:
        return NO_WINNER, None
    lifts = {c.variant: c.lift or 0.0 for c in comparisons
             if c.against == definition.control and c.metric == definition.primary_metric}
    return WINNER, max(winners, key=lambda label: lifts[label])


def champion_arm(definition: ExperimentDefinition) -> str | None:
    """The variant serving production's champion (as it was at the start), if any: a
    winner must beat it too, not only the control."""
    for variant in definition.variants:
        if variant.target == "champion":
            return variant.label
    return None


def _power(groups: dict, definition: ExperimentDefinition) -> dict:
    """Power and the minimum detectable lift of the primary metric at the current sample,
    with the control's observed variance (before the test: `stats.users_needed`)."""
    control = groups[definition.control]
    metric = definition.primary_metric
    if len(control) < 2:
        return {"metric": metric, "users_per_arm": int(len(control)), "mde": None,
                "power_at_target": None, "users_needed": None}
    base = estimate(control, metric)
    n = min(len(frame) for frame in groups.values())
    return {"metric": metric, "baseline": _finite(base.mean), "users_per_arm": int(n),
            "target_lift": definition.target_lift,
            "mde": _finite(stats.minimum_detectable_lift(base.unit_variance, base.mean, n,
                                                         definition.alpha, definition.power)),
            "power_at_target": _finite(stats.power(base.unit_variance, base.mean,
                                                   definition.target_lift, n, definition.alpha)),
            "users_needed": stats.users_needed(base.unit_variance, base.mean,
                                               definition.target_lift, definition.alpha,
                                               definition.power)}


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
