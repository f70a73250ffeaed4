"""The statistics engine: estimates with their variance, tests, corrections, power.

Every metric reaches the tests as an `Estimate` (a mean and the variance of that mean), so
one comparison serves all of them:
- per-user means (revenue per user, conversion as a 0/1 mean): sample variance / n;
- ratios of sums over users (CTR = clicked lists / lists shown, AOV = revenue / orders):
  the delta method on the per-user numerators and denominators, because lists of one user
  are not independent (treating lists as independent trials understates the variance when
  users differ; the chi-square is reported beside it for reference);
- CUPED: a per-user metric minus theta times its pre-period value's deviation, theta
  pooled over all variants (so it does not bias the difference).

Relative lift and its confidence interval use the delta method on the ratio of two
independent means. P-values are two-sided z-tests; Holm's step-down method corrects them
across variants and metrics. Group-sequential testing (Lan-DeMets alpha spending with an
O'Brien-Fleming-type function) gives boundaries for looks taken at any information
fractions, so daily looks keep the error rate at alpha.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats


@dataclass(frozen=True)
class Estimate:
    mean: float
    variance: float
    """Variance of `mean` (the squared standard error)."""
    n: int
    """Users behind the estimate."""

    @property
    def unit_variance(self) -> float:
        """Variance of one user's contribution (what power calculations scale by 1/n)."""
        return self.variance * self.n


def mean_estimate(values: np.ndarray) -> Estimate:
    values = np.asarray(values, dtype=float)
    n = values.size
    variance = float(values.var(ddof=1)) / n if n > 1 else math.inf
    return Estimate(float(values.mean()) if n else math.nan, variance, n)


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
    """sum(numerator) / sum(denominator) over users, variance by the delta method."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    n = numerator.size
    if n < 2 or denominator.sum() <= 0:
        return Estimate(math.nan, math.inf, n)
    mean_num, mean_den = numerator.mean(), denominator.mean()
    var_num, var_den = numerator.var(ddof=1), denominator.var(ddof=1)
    cov = float(np.cov(numerator, denominator, ddof=1)[0, 1])
    ratio = mean_num / mean_den
    variance = (var_num / mean_den**2 - 2 * mean_num * cov / mean_den**3
                + mean_num**2 * var_den / mean_den**4) / n
    return Estimate(float(ratio), float(max(variance, 0.0)), n)


def cuped_theta(values: list[np.ndarray], covariates: list[np.ndarray]) -> float:
    """theta = cov(Y, X) / var(X), pooled over every variant's users."""
    y = np.concatenate([np.asarray(v, dtype=float) for v in values])
    x = np.concatenate([np.asarray(c, dtype=float) for c in covariates])
    variance = x.var(ddof=1) if x.size > 1 else 0.0
    if variance <= 0:
        return 0.0
    return float(np.cov(y, x, ddof=1)[0, 1] / variance)


def cuped_adjust(values: np.ndarray, covariate: np.ndarray, theta: float,
                 covariate_mean: float) -> np.ndarray:
    """Y - theta (X - E[X]): same mean in expectation, less variance when X predicts Y."""
    return np.asarray(values, dtype=float) - theta * (np.asarray(covariate, dtype=float)
                                                       - covariate_mean)


@dataclass(frozen=True)
class Comparison:
    lift: float
    """Relative lift of treatment over control (0.05 = +5%)."""
    absolute: float
    ci_low: float
    ci_high: float
    """Confidence interval of the relative lift."""
    z: float
    p_value: float


def compare(treatment: Estimate, control: Estimate, alpha: float = 0.05) -> Comparison:
    """Two-sided z-test of the difference and the relative lift's delta-method interval."""
    difference = treatment.mean - control.mean
    se_difference = math.sqrt(treatment.variance + control.variance)
    z = difference / se_difference if se_difference > 0 else math.nan
    p_value = float(2 * stats.norm.sf(abs(z))) if math.isfinite(z) else math.nan
    if control.mean == 0 or not math.isfinite(control.mean):
        return Comparison(math.nan, difference, math.nan, math.nan, z, p_value)
    lift = treatment.mean / control.mean - 1
    se_lift = math.sqrt(treatment.variance / control.mean**2
                        + treatment.mean**2 * control.variance / control.mean**4)
    half = stats.norm.ppf(1 - alpha / 2) * se_lift
    return Comparison(lift, difference, lift - half, lift + half, z, p_value)


def non_inferiority_p(treatment: Estimate, control: Estimate, margin: float) -> float:
    """One-sided p-value of H0: treatment <= control * (1 - margin) (the guardrail is
    broken); small means the variant is shown not to be worse by more than the margin."""
    bound = control.mean * (1 - margin)
    se = math.sqrt(treatment.variance + (1 - margin) ** 2 * control.variance)
    if se <= 0 or not math.isfinite(se):
        return math.nan
    return float(stats.norm.sf((treatment.mean - bound) / se))


def chi_square_2x2(successes_a: int, trials_a: int, successes_b: int,
                   trials_b: int) -> tuple[float, float]:
    """Pearson's chi-square (no continuity correction) on a 2x2 table of successes and
    failures; returns (statistic, p-value), both NaN when a row or a column of the table
    is empty (an arm without trials, or no successes or no failures at all)."""
    table = np.array([[successes_a, trials_a - successes_a],
                      [successes_b, trials_b - successes_b]])
    if (table < 0).any():
        raise ValueError(f"successes must lie between 0 and the trials: {successes_a}/"
                         f"{trials_a} and {successes_b}/{trials_b}")
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return math.nan, math.nan  # an expected count is 0: the statistic is undefined
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test; returns (t, degrees of freedom, p-value), all NaN
    when a group has fewer than two values or neither group varies."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2 or a.var(ddof=1) + b.var(ddof=1) <= 0:
        return math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        # scipy warns of precision loss when one group is constant: its variance is 0
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.df), float(result.pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if math.isfinite(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


SRM_ALPHA = 0.001


def sample_ratio_mismatch(observed: dict[str, int], expected_shares: dict[str, float]
                          ) -> dict:
    """Chi-square goodness of fit of the users per variant against the configured split;
    flagged below p = 0.001 (then the assignment or the logging is broken: no result of
    the test can be trusted)."""
    labels = list(expected_shares)
    counts = np.array([observed.get(label, 0) for label in labels], dtype=float)
    shares = np.array([expected_shares[label] for label in labels], dtype=float)
    total = counts.sum()
    if total == 0:
        return {"p_value": None, "flagged": False, "observed": observed,
                "expected": {label: 0.0 for label in labels}}
    expected = shares / shares.sum() * total
    result = stats.chisquare(counts, expected)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return {"p_value": p_value, "flagged": p_value < SRM_ALPHA, "statistic": statistic,
            "observed": {label: int(c) for label, c in zip(labels, counts)},
            "expected": {label: float(e) for label, e in zip(labels, expected)}}


def power(unit_variance: float, baseline: float, lift: float, users_per_arm: float,
          alpha: float = 0.05) -> float:
    """Probability that a two-sided z-test at `alpha` detects a relative `lift` on a metric
    with this per-user variance and control mean, with `users_per_arm` in both arms."""
    if users_per_arm <= 0 or unit_variance <= 0:
        return math.nan
    effect = abs(baseline * lift)
    se = math.sqrt(2 * unit_variance / users_per_arm)
    z = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf(effect / se - z) + stats.norm.cdf(-effect / se - z))


def minimum_detectable_lift(unit_variance: float, baseline: float, users_per_arm: float,
                            alpha: float = 0.05, target_power: float = 0.8) -> float:
    """Smallest relative lift detected with `target_power` at this sample size."""
    if users_per_arm <= 0 or baseline == 0 or unit_variance <= 0:
        return math.nan
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target_power)
    return float(z * math.sqrt(2 * unit_variance / users_per_arm) / abs(baseline))


def users_needed(unit_variance: float, baseline: float, lift: float, alpha: float = 0.05,
                 target_power: float = 0.8) -> int:
    """Users per arm for `target_power` against a relative `lift`."""
    if baseline == 0 or lift == 0 or unit_variance <= 0:
        return 0
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target_power)
    return int(math.ceil(2 * unit_variance * (z / (baseline * lift)) ** 2))


def obrien_fleming_spent(fraction: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type spending of a symmetric two-sided test at `alpha`:
    the alpha used up by information `fraction`, 2 - 2 Phi(z_{alpha/4} / sqrt(t)) on each
    side (the one-sided function at alpha / 2), twice that in all. The form of gsDesign
    (sfLDOF), rpact (asOF) and ld98/ldbounds: K=5 equally spaced looks at 0.05 give the
    tabulated boundaries 4.877, 3.357, 2.680, 2.290, 2.031."""
    if fraction <= 0:
        return 0.0
    fraction = min(fraction, 1.0)
    return float(4 * stats.norm.sf(stats.norm.ppf(1 - alpha / 4) / math.sqrt(fraction)))


GRID = 1201


def sequential_boundaries(fractions: list[float], alpha: float = 0.05) -> list[float]:
    """Two-sided z boundaries for looks at increasing information `fractions` (the last may
    be 1: the planned end), by numerical integration of the Brownian motion's sub-density
    between looks (Armitage, McPherson and Rowe). A test whose |z| at look k reaches the
    k-th boundary stops; the chance of that under no effect is `alpha` in total."""
    boundaries: list[float] = []
    grid = weights = np.empty(0)
    density: np.ndarray | None = None  # the sub-density on `grid` after the last look
    previous_t, previous_spent = 0.0, 0.0
    for t in fractions:
        t = min(float(t), 1.0)
        if t <= previous_t:
            raise ValueError(f"information fractions must increase: {fractions}")
        spend = obrien_fleming_spent(t, alpha) - previous_spent
        if density is None:
            z = stats.norm.isf(spend / 2)
            bound = z * math.sqrt(t)
            grid = np.linspace(-bound, bound, GRID)
            weights = _simpson(grid)
            density = stats.norm.pdf(grid, scale=math.sqrt(t))
        else:
            sd = math.sqrt(t - previous_t)
            mass = density * weights

            def crossing(bound, mass=mass, grid=grid, sd=sd, spend=spend):
                return float(mass @ (stats.norm.cdf((-bound - grid) / sd)
                                     + stats.norm.sf((bound - grid) / sd))) - spend

            top = 40 * math.sqrt(t)
            bound = optimize.brentq(crossing, 1e-9, top, xtol=1e-10) \
                if crossing(top) < 0 < crossing(1e-9) else top
            new_grid = np.linspace(-bound, bound, GRID)
            kernel = stats.norm.pdf((new_grid[:, None] - grid[None, :]) / sd) / sd
            density = kernel @ mass
            grid, weights = new_grid, _simpson(new_grid)
            z = bound / math.sqrt(t)
        boundaries.append(float(z))
        previous_t, previous_spent = t, previous_spent + spend
    return boundaries


def _simpson(grid: np.ndarray) -> np.ndarray:
    """Simpson's rule weights on an evenly spaced grid with an odd number of points."""
    h = grid[1] - grid[0]
    weights = np.ones(grid.size)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    return weights * h / 3
