"""The statistics engine against scipy, hand-computed values and simulation."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from recsys.experiments import stats

PROPERTY = settings(max_examples=200, derandomize=True, deadline=None, database=None)
NAN_PAIR = (math.nan, math.nan)

def test_chi_square_matches_scipy_without_continuity_correction():
    statistic, p_value = stats.chi_square_2x2(120, 2000, 150, 2100)
    expected = scipy_stats.chi2_contingency([[120, 1880], [150, 1950]], correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


@PROPERTY
@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000),
       st.integers(0, 10_000))
def test_chi_square_is_the_closed_form_of_a_2x2_table(a, b, c, d):
    """Without continuity correction the 2x2 statistic is N (ad - bc)^2 / (r1 r2 c1 c2)
    and, on one degree of freedom, its p-value is erfc(sqrt(statistic / 2))."""
    statistic, p_value = stats.chi_square_2x2(a, a + b, c, c + d)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    if margins == 0:
        assert (statistic, p_value) == pytest.approx(NAN_PAIR, nan_ok=True)
        return
    by_hand = (a + b + c + d) * (a * d - b * c) ** 2 / margins
    assert statistic == pytest.approx(by_hand, rel=1e-9, abs=1e-12)
    assert p_value == pytest.approx(math.erfc(math.sqrt(by_hand / 2)), rel=1e-7, abs=1e-300)


@pytest.mark.parametrize("counts", [
    (0, 0, 3, 10),    # an arm without trials
    (0, 0, 0, 0),     # no trials at all
    (0, 10, 0, 20),   # no successes anywhere
    (10, 10, 5, 5),   # no failures anywhere
])
def test_chi_square_is_nan_when_an_expected_count_is_zero(counts):
    assert stats.chi_square_2x2(*counts) == pytest.approx(NAN_PAIR, nan_ok=True)


def test_chi_square_refuses_more_successes_than_trials():
    with pytest.raises(ValueError, match="between 0 and the trials"):
        stats.chi_square_2x2(5, 3, 1, 10)


def test_welch_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.gamma(2.0, 10.0, 800), rng.gamma(2.0, 11.0, 1300)
    t, df, p_value = stats.welch(a, b)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(expected.statistic, rel=1e-10)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-8)
    assert df == pytest.approx(expected.df, rel=1e-10)


def test_welch_by_hand_when_one_group_is_constant():
    # a = [1, 1, 1]: variance 0; b = [1, 2, 3]: variance 1, so var(mean b) = 1/3.
    # t = (1 - 2) / sqrt(1/3) = -sqrt(3); df = (1/3)^2 / ((1/3)^2 / 2) = 2; with two
    # degrees of freedom P(|T| > t) = 1 - t / sqrt(t^2 + 2) = 1 - sqrt(3/5).
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a constant group is no precision problem
        t, df, p_value = stats.welch(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]))
    assert t == pytest.approx(-math.sqrt(3))
    assert df == pytest.approx(2.0)
    assert p_value == pytest.approx(1 - math.sqrt(3 / 5))


@pytest.mark.parametrize("a, b", [
    ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0]),  # neither group varies (scipy: t = -inf, p = 0)
    ([4.0, 4.0], [4.0, 4.0, 4.0]),       # nor here (scipy: t = NaN, df = 1)
    ([1.0], [1.0, 2.0, 3.0]),            # a single user has no variance
    ([], [1.0, 2.0]),                    # an empty group
    ([], []),
])
def test_welch_is_nan_without_two_users_per_group_or_any_variance(a, b):
    assert stats.welch(np.array(a), np.array(b)) == pytest.approx(
        (math.nan, math.nan, math.nan), nan_ok=True)


def test_holm_adjusts_like_the_hand_computation():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> max(0.06, 0.04)=0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = stats.holm([0.5, math.nan, 0.4])
    assert math.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.8)
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 0.8 * 2 caps at 1


def test_delta_method_ratio_variance_by_hand_and_by_simulation():
    numerator, denominator = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 4.0])
    estimate = stats.ratio_estimate(numerator, denominator)
    mx, my = 2.0, 8 / 3
    vx, vy = 1.0, np.var([2, 2, 4], ddof=1)
    cov = np.cov([1, 2, 3], [2, 2, 4], ddof=1)[0, 1]
    by_hand = (vx / my**2 - 2 * mx * cov / my**3 + mx**2 * vy / my**4) / 3
    assert estimate.mean == pytest.approx(6 / 8)
    assert estimate.variance == pytest.approx(by_hand)
    # the delta variance matches the spread of the ratio over repeated samples of users
    rng = np.random.default_rng(5)
    ratios, variances = [], []
    for _ in range(2000):
        lists = rng.poisson(4, 500) + 1
        rate = rng.beta(2, 30, 500)
        clicked = rng.binomial(lists, rate)
        e = stats.ratio_estimate(clicked, lists)
        ratios.append(e.mean)
        variances.append(e.variance)
    assert np.mean(variances) == pytest.approx(np.var(ratios, ddof=1), rel=0.1)


def test_cuped_reduces_variance_on_correlated_pre_period_data_and_keeps_the_mean():
    rng = np.random.default_rng(7)
    pre = rng.gamma(2.0, 20.0, 20_000)
    during = 0.8 * pre + rng.normal(0, 10, pre.size)
    theta = stats.cuped_theta([during], [pre])
    assert theta == pytest.approx(0.8, abs=0.02)
    adjusted = stats.cuped_adjust(during, pre, theta, pre.mean())
    assert adjusted.mean() == pytest.approx(during.mean())
    assert adjusted.var() < 0.2 * during.var()
    # uncorrelated covariate: theta near 0, variance unchanged
    noise = rng.normal(size=pre.size)
    assert abs(stats.cuped_theta([during], [noise])) < 0.5


def test_srm_matches_scipy_and_flags_only_below_one_in_a_thousand():
    observed = {"control": 2950, "a": 3600, "b": 3450}
    shares = {"control": 0.30, "a": 0.35, "b": 0.35}
    result = stats.sample_ratio_mismatch(observed, shares)
    expected = scipy_stats.chisquare([2950, 3600, 3450], [3000, 3500, 3500])
    assert result["p_value"] == pytest.approx(expected.pvalue)
    assert result["flagged"] is bool(expected.pvalue < 0.001)
    assert stats.sample_ratio_mismatch({"control": 3000, "a": 3000, "b": 3300},
                                       shares)["flagged"] is True


@PROPERTY
@given(st.integers(0, 100_000), st.integers(0, 100_000))
def test_srm_on_an_even_split_is_the_closed_form(control, treated):
    """Two arms at 50/50: statistic (n1 - n2)^2 / (n1 + n2) on one degree of freedom."""
    result = stats.sample_ratio_mismatch({"control": control, "a": treated},
                                         {"control": 0.5, "a": 0.5})
    total = control + treated
    if total == 0:
        assert result["p_value"] is None and result["flagged"] is False
        return
    statistic = (control - treated) ** 2 / total
    assert result["statistic"] == pytest.approx(statistic, rel=1e-9, abs=1e-9)
    p_value = math.erfc(math.sqrt(statistic / 2))
    assert result["p_value"] == pytest.approx(p_value, rel=1e-7, abs=1e-300)
    assert result["flagged"] is (result["p_value"] < stats.SRM_ALPHA)
    assert result["expected"] == {"control": total / 2, "a": total / 2}


def test_srm_without_users_has_no_p_value_and_keeps_the_counts_given():
    observed = {"control": 0, "a": 0, "stray": 0}
    result = stats.sample_ratio_mismatch(observed, {"control": 0.5, "a": 0.5})
    assert result == {"p_value": None, "flagged": False, "observed": observed,
                      "expected": {"control": 0.0, "a": 0.0}}


def test_srm_counts_only_configured_variants_and_flags_users_in_a_zero_share():
    shares = {"control": 0.5, "a": 0.5}
    result = stats.sample_ratio_mismatch({"control": 50, "a": 50, "stray": 900}, shares)
    assert result["observed"] == {"control": 50, "a": 50}
    assert (result["statistic"], result["p_value"], result["flagged"]) == (0.0, 1.0, False)
    # users where the split sends none: an infinite statistic, p = 0, flagged
    result = stats.sample_ratio_mismatch({"control": 90, "a": 10},
                                         {"control": 1.0, "a": 0.0})
    assert (result["statistic"], result["p_value"], result["flagged"]) == (math.inf, 0.0,
                                                                          True)


def test_relative_lift_interval_covers_the_truth_at_the_nominal_rate():
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(400):
        control = stats.mean_estimate(rng.exponential(10.0, 3000))
        treated = stats.mean_estimate(rng.exponential(11.0, 3000))
        result = stats.compare(treated, control)
        covered += result.ci_low <= 0.10 <= result.ci_high
    assert 0.92 <= covered / 400 <= 0.98


def test_power_and_sample_size_agree_with_each_other():
    variance, baseline = 0.02, 0.1
    n = stats.users_needed(variance, baseline, 0.05)
    assert stats.power(variance, baseline, 0.05, n) == pytest.approx(0.8, abs=0.005)
    mde = stats.minimum_detectable_lift(variance, baseline, n)
    assert mde == pytest.approx(0.05, rel=0.01)


def test_sequential_boundaries_spend_exactly_alpha():
    assert stats.sequential_boundaries([1.0]) == [pytest.approx(1.959964, abs=1e-5)]
    # two looks: the first spends 4(1 - Phi(z_0.9875 / sqrt(0.5))) over both sides
    first, last = stats.sequential_boundaries([0.5, 1.0])
    spent_per_side = 2 * scipy_stats.norm.sf(scipy_stats.norm.isf(0.0125) * math.sqrt(2))
    assert first == pytest.approx(scipy_stats.norm.isf(spent_per_side), abs=1e-6)
    assert 1.96 < last < 2.0
    looks = np.arange(1, 15) / 14
    bounds = np.array(stats.sequential_boundaries(list(looks)))
    assert (np.diff(bounds) < 0).all()
    rng = np.random.default_rng(13)
    steps = rng.standard_normal((200_000, looks.size)) * np.sqrt(np.diff(np.r_[0, looks]))
    z = steps.cumsum(axis=1) / np.sqrt(looks)
    assert (np.abs(z) >= bounds).any(axis=1).mean() == pytest.approx(0.05, abs=0.002)


def test_non_inferiority_passes_an_equal_variant_and_fails_a_worse_one():
    control = stats.Estimate(0.10, 0.0001**2, 10_000)
    assert stats.non_inferiority_p(stats.Estimate(0.10, 0.0001**2, 10_000), control,
                                   0.05) < 0.001
    assert stats.non_inferiority_p(stats.Estimate(0.09, 0.0001**2, 10_000), control,
                                   0.05) > 0.99
