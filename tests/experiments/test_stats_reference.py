"""The delta method, CUPED and the Lan-DeMets boundaries against values worked out by hand or
tabulated in the group-sequential literature."""
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as scipy_stats

from recsys.experiments import stats

EQUALLY_SPACED = {k: [look / k for look in range(1, k + 1)] for k in range(2, 6)}


def test_delta_method_ratio_variance_worked_by_hand():
    """Clicks over lists of four users: clicks x = (0, 1, 2, 1), lists y = (1, 2, 2, 3).

    Ratio R = sum x / sum y = 4 / 8 = 1/2. Means: x 1, y 2. Sample variances (n - 1 = 3):
    var x = (1 + 0 + 1 + 0) / 3 = 2/3, var y = (1 + 0 + 0 + 1) / 3 = 2/3,
    cov = ((-1)(-1) + 0 + 0 + (0)(1)) / 3 = 1/3. Delta method:
    var R = (var x / my^2 - 2 mx cov / my^3 + mx^2 var y / my^4) / n
          = (1/6 - 1/12 + 1/24) / 4 = (1/8) / 4 = 1/32.
    The same by linearisation: residuals x - R y = (-1/2, 0, 1, -1/2) have variance
    (1/4 + 0 + 1 + 1/4) / 3 = 1/2, and var R = 1/2 / (n my^2) = 1/2 / 16 = 1/32.
    """
    estimate = stats.ratio_estimate(np.array([0.0, 1.0, 2.0, 1.0]),
                                    np.array([1.0, 2.0, 2.0, 3.0]))
    assert estimate.mean == 0.5
    assert estimate.variance == pytest.approx(1 / 32, rel=1e-12)
    assert estimate.n == 4
    assert estimate.unit_variance == pytest.approx(1 / 8, rel=1e-12)


def test_delta_method_without_denominator_or_with_one_user_has_no_variance():
    assert math.isinf(stats.ratio_estimate(np.array([1.0, 2.0]), np.zeros(2)).variance)
    assert math.isinf(stats.ratio_estimate(np.array([1.0]), np.array([2.0])).variance)


def test_cuped_theta_pools_every_variant_and_is_cov_over_var():
    """Y = (2, 4, 5, 9) during the test, X = (1, 2, 3, 4) before it; control holds the first
    two users, the variant the last two.

    Pooled: mean X 5/2, mean Y 5; deviations X (-3/2, -1/2, 1/2, 3/2), Y (-3, -1, 0, 4);
    var X = (9/4 + 1/4 + 1/4 + 9/4) / 3 = 5/3, cov = (9/2 + 1/2 + 0 + 6) / 3 = 11/3, so
    theta = cov / var X = 11/5. (Per arm the slopes would be 2 and 4: pooling is not their
    mean.) Adjusted Y - 11/5 (X - 5/2) = (5.3, 5.1, 3.9, 5.7): the mean stays 5 and the
    variance falls from 26/3 to 26/3 - cov^2 / var X = 26/3 - 121/15 = 3/5.
    """
    values = [np.array([2.0, 4.0]), np.array([5.0, 9.0])]
    covariates = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    theta = stats.cuped_theta(values, covariates)
    assert Fraction(theta).limit_denominator(1000) == Fraction(11, 5)
    y, x = np.concatenate(values), np.concatenate(covariates)
    adjusted = stats.cuped_adjust(y, x, theta, x.mean())
    assert adjusted == pytest.approx([5.3, 5.1, 3.9, 5.7])
    assert adjusted.mean() == pytest.approx(5.0)
    assert adjusted.var(ddof=1) == pytest.approx(3 / 5)
    assert y.var(ddof=1) == pytest.approx(26 / 3)


def test_cuped_theta_is_zero_when_the_covariate_does_not_vary():
    assert stats.cuped_theta([np.array([1.0, 5.0, 9.0])], [np.array([2.0, 2.0, 2.0])]) == 0.0
    assert stats.cuped_theta([np.array([1.0])], [np.array([2.0])]) == 0.0


# Lan-DeMets O'Brien-Fleming-type spending, K equally spaced looks, one-sided alpha 0.025
# (the same boundaries, to these decimals, as the symmetric two-sided test at 0.05), as
# tabulated by gsDesign (sfLDOF), rpact (asOF) and the ld98 program of Reboussin, DeMets,
# Kim and Lan (Controlled Clinical Trials 21:190-207, 2000; R package ldbounds).
PUBLISHED_LDOF = {
    2: [2.963, 1.969],
    3: [3.710, 2.511, 1.993],
    4: [4.333, 2.963, 2.359, 2.014],
    5: [4.877, 3.357, 2.680, 2.290, 2.031],
}


@pytest.mark.parametrize("looks", sorted(PUBLISHED_LDOF))
def test_boundaries_are_the_published_lan_demets_table(looks):
    """Values: K=2 2.963 1.969; K=3 3.710 2.511 1.993; K=4 4.333 2.963 2.359 2.014;
    K=5 4.877 3.357 2.680 2.290 2.031 (the last is 2.04 for the classical, not
    spending-function, O'Brien-Fleming boundaries)."""
    boundaries = stats.sequential_boundaries(EQUALLY_SPACED[looks], alpha=0.05)
    assert boundaries == pytest.approx(PUBLISHED_LDOF[looks], abs=6e-4)


@pytest.mark.parametrize("looks", sorted(PUBLISHED_LDOF))
def test_the_first_boundary_is_the_closed_form(looks):
    """Nothing was spent before the first look, so P(|Z| >= c) = 4 - 4 Phi(z_{0.0125} /
    sqrt(t1)) there: c = Phi^-1(1 - (2 - 2 Phi(2.2414 / sqrt(t1))))."""
    boundaries = stats.sequential_boundaries(EQUALLY_SPACED[looks], alpha=0.05)
    one_side = 2 * scipy_stats.norm.sf(scipy_stats.norm.isf(0.0125) / math.sqrt(1 / looks))
    assert boundaries[0] == pytest.approx(scipy_stats.norm.isf(one_side), abs=1e-9)


def test_own_boundaries_spend_the_function_exactly_by_multivariate_normal_integration():
    """Independent of the recursion: Z at looks t_i, t_j of a Brownian motion have
    correlation sqrt(t_i / t_j); Genz's integration of that normal over the box
    |Z_j| < c_j (j <= k) must leave exactly the alpha spent by look k outside."""
    fractions = np.array(EQUALLY_SPACED[5])
    boundaries = np.array(stats.sequential_boundaries(list(fractions), alpha=0.05))
    correlation = np.sqrt(np.minimum.outer(fractions, fractions)
                          / np.maximum.outer(fractions, fractions))
    for k in range(1, fractions.size + 1):
        normal = scipy_stats.multivariate_normal(np.zeros(k), correlation[:k, :k],
                                                 abseps=1e-6, releps=0, seed=0)
        outside = 1 - normal.cdf(boundaries[:k], lower_limit=-boundaries[:k])
        assert outside == pytest.approx(stats.obrien_fleming_spent(fractions[k - 1], 0.05),
                                        abs=5e-6)
