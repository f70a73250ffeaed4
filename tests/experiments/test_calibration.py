"""Calibration by simulation: the engine's error rates are the ones it claims.

Users see a few lists each and click with a rate of their own (so lists of one user are
correlated, as in a shop); the CTR is compared with the delta method, as the analysis does.
"""
import numpy as np
import pytest

from recsys.experiments import stats

TESTS = 500
ALPHA = 0.05


def arm(rng, users, ctr_scale=1.0):
    lists = rng.poisson(3.0, users) + 1
    rate = np.clip(rng.beta(1.2, 28.0, users) * ctr_scale, 0, 1)
    return rng.binomial(lists, rate), lists


def ctr_z(treated, control):
    return stats.compare(stats.ratio_estimate(*treated), stats.ratio_estimate(*control)).z


def test_500_aa_tests_reject_at_the_nominal_rate():
    rng = np.random.default_rng(2024)
    rejected = 0
    for _ in range(TESTS):
        result = stats.compare(stats.ratio_estimate(*arm(rng, 2000)),
                               stats.ratio_estimate(*arm(rng, 2000)))
        rejected += result.p_value < ALPHA
    assert 0.03 <= rejected / TESTS <= 0.07


def test_daily_peeking_is_safe_with_the_sequential_option_and_unsafe_without():
    rng = np.random.default_rng(99)
    days, per_day = 14, 300
    fractions = list(np.arange(1, days + 1) / days)
    bounds = stats.sequential_boundaries(fractions, ALPHA)
    sequential_rejections = naive_rejections = 0
    for _ in range(TESTS):
        treated_clicks, treated_lists = arm(rng, days * per_day)
        control_clicks, control_lists = arm(rng, days * per_day)
        stop = naive = False
        for day in range(days):
            n = (day + 1) * per_day
            z = ctr_z((treated_clicks[:n], treated_lists[:n]),
                      (control_clicks[:n], control_lists[:n]))
            stop |= abs(z) >= bounds[day]
            naive |= abs(z) >= 1.959964
        sequential_rejections += stop
        naive_rejections += naive
    assert 0.03 <= sequential_rejections / TESTS <= 0.07
    assert naive_rejections / TESTS > 0.12  # why the option exists


def test_a_true_10_percent_ctr_lift_is_detected_at_the_predicted_rate():
    rng = np.random.default_rng(7)
    users = 5000
    reference = stats.ratio_estimate(*arm(rng, 400_000))
    predicted = stats.power(reference.unit_variance, reference.mean, 0.10, users, ALPHA)
    assert 0.3 < predicted < 0.9  # a rate the test can tell apart from 0 and 1
    detected = 0
    for _ in range(TESTS):
        result = stats.compare(stats.ratio_estimate(*arm(rng, users, 1.10)),
                               stats.ratio_estimate(*arm(rng, users)))
        detected += result.p_value < ALPHA and result.lift > 0
    assert detected / TESTS == pytest.approx(predicted, abs=0.05)
