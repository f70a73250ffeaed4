"""Outcomes and the verdict: exact values on a hand-made case, the right winner on a
simulated test, and clear verdicts on thin or mismatched data."""
import json

import numpy as np
import pandas as pd
import pytest

from recsys.experiments.analysis import (
    NO_WINNER,
    NOT_ENOUGH_USERS,
    SRM_VERDICT,
    WINNER,
    AnalysisInput,
    analyze,
)
from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition, parse_variants
from recsys.experiments.outcomes import user_outcomes
from recsys.experiments.report import report_html
from tests.experiments.shop_simulation import START, simulate

T = START


def definition(**changes):
    return ExperimentDefinition(**{
        "name": "seeds-ab", "starts_at": START.to_pydatetime(),
        "variants": parse_variants("control=popularity:30,a=champion:35,b=challenger:35"),
        **changes})


def run(d, exposures, events, pre=None, looks=()):
    outcomes = user_outcomes(exposures, events, START, d.attribution_hours, pre)
    return analyze(AnalysisInput(d, outcomes, Assigner(d).expected_shares(), list(looks)))


def test_outcomes_by_hand_clicks_and_last_touch_attribution_within_the_window():
    exposures = pd.DataFrame([
        (T, "u1", "control", "r1", ["x", "y"]),
        (T + pd.Timedelta(hours=1), "u1", "control", "r2", ["y", "z"]),
        (T, "u2", "b", "r3", ["x"]),
        (T, "u3", "b", "r4", ["q"]),
    ], columns=["timestamp", "user_id", "variant", "recommendation_id", "item_ids"])
    cols = ["event_id", "user_id", "item_id", "event_type", "timestamp", "price",
            "recommendation_id"]
    events = pd.DataFrame([
        ("e1", "u1", "y", "click", T + pd.Timedelta(minutes=5), None, "r1"),
        ("e2", "u1", "y", "click", T + pd.Timedelta(minutes=6), None, "r1"),  # same list
        ("e3", "u1", "y", "purchase", T + pd.Timedelta(hours=3), 30.0, None),  # shown: yes
        ("e4", "u1", "w", "purchase", T + pd.Timedelta(hours=3), 99.0, None),  # never shown
        ("e5", "u2", "x", "purchase", T + pd.Timedelta(hours=30), 50.0, None),  # too late
        ("e6", "u2", "x", "add_to_cart", T + pd.Timedelta(hours=1), 50.0, None),
        ("e7", "u3", "q", "click", T + pd.Timedelta(minutes=1), None, "unknown-list"),
        ("e8", "u3", "q", "purchase", T + pd.Timedelta(minutes=2), None, None),  # no price
    ], columns=cols)
    pre = pd.DataFrame([("p1", "u1", "x", "purchase", T - pd.Timedelta(days=2), 12.0, None)],
                       columns=cols)
    out = user_outcomes(exposures, events, START, 24, pre)
    users = out.users
    assert users.loc["u1"].to_dict() == {
        "variant": "control", "exposures": 2, "clicked_lists": 1, "clicks": 2, "carts": 0,
        "orders": 1, "revenue": 30.0, "pre_events": 1, "pre_revenue": 12.0,
        # e1's visit goes on with e2 a minute later; e2's next event is hours away
        "dwell_seconds": 60.0, "dwell_clicks": 1}
    assert users.loc["u2", ["carts", "orders", "revenue"]].tolist() == [1, 0, 0]
    assert users.loc["u3", ["clicks", "orders", "revenue"]].tolist() == [0, 1, 0]
    assert (out.unmatched_clicks, out.unpriced_purchases, out.crossovers) == (1, 1, 0)
    assert out.daily.set_index("variant").loc["control", "ctr"] == 0.5


def test_dwell_time_runs_from_a_click_to_the_next_action_of_the_same_visit():
    exposures = pd.DataFrame([(T, "u1", "b", "r1", ["x", "y"]), (T, "u2", "b", "r2", ["x"]),
                              (T, "u3", "control", "r3", ["x"])],
                             columns=["timestamp", "user_id", "variant", "recommendation_id",
                                      "item_ids"])
    cols = ["event_id", "user_id", "item_id", "event_type", "timestamp", "price",
            "recommendation_id"]
    second = pd.Timedelta(seconds=1)
    events = pd.DataFrame([
        # u1: click x, the product page opens (not the end of the dwell), 40 s later a cart
        ("a1", "u1", "x", "click", T + 10 * second, None, "r1"),
        ("a2", "u1", "x", "view", T + 11 * second, None, None),
        ("a3", "u1", "x", "add_to_cart", T + 50 * second, 9.0, None),
        # then a click on y, 20 s later a view of another item; then y again, last event
        ("a4", "u1", "y", "click", T + 60 * second, None, "r1"),
        ("a5", "u1", "z", "view", T + 80 * second, None, None),
        ("a6", "u1", "y", "click", T + 90 * second, None, "r1"),
        # u2: the next event is 31 minutes later, another visit: no dwell time
        ("b1", "u2", "x", "click", T, None, "r2"),
        ("b2", "u2", "x", "view", T + 31 * 60 * second, None, None),
        # u3: a view in the same millisecond as the click does not end it
        ("c1", "u3", "x", "click", T, None, "r3"),
        ("c2", "u3", "q", "view", T, None, None),
        ("c3", "u3", "q", "view", T + 5 * second, None, None),
    ], columns=cols)
    users = user_outcomes(exposures, events, START, 24).users
    assert users.loc["u1", ["dwell_seconds", "dwell_clicks"]].tolist() == [40 + 20, 2]
    assert users.loc["u2", ["dwell_seconds", "dwell_clicks"]].tolist() == [0, 0]
    assert users.loc["u3", ["dwell_seconds", "dwell_clicks"]].tolist() == [5, 1]
    summary = run(definition(minimum_users=1, secondary_metrics=("dwell_time",)),
                  exposures, events)
    assert summary["variants"]["b"]["dwell_time"] == 30.0  # 60 s over 2 measured clicks
    assert summary["variants"]["control"]["dwell_time"] == 5.0
    assert any(c["metric"] == "dwell_time" for c in summary["comparisons"])


def test_a_user_seen_in_two_variants_is_left_out_and_counted():
    exposures = pd.DataFrame([(T, "u1", "a", "r1", ["x"]), (T, "u1", "b", "r2", ["x"]),
                              (T, "u2", "b", "r3", ["x"])],
                             columns=["timestamp", "user_id", "variant", "recommendation_id",
                                      "item_ids"])
    empty = pd.DataFrame(columns=["event_id", "user_id", "item_id", "event_type",
                                  "timestamp", "price", "recommendation_id"])
    out = user_outcomes(exposures, empty, START, 24)
    assert out.crossovers == 1 and list(out.users.index) == ["u2"]


def test_the_truly_better_variant_wins_with_values_a_reader_can_check():
    d = definition(minimum_users=500)
    exposures, events, pre = simulate(d, 6000, ctr={"control": 0.10, "a": 0.10, "b": 0.16},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=1)
    summary = run(d, exposures, events, pre)
    assert summary["verdict"] == WINNER and summary["winner"] == "b"
    assert summary["srm"]["flagged"] is False
    v = summary["variants"]
    assert sum(x["users"] for x in v.values()) == exposures["user_id"].nunique()
    assert v["b"]["ctr"] == pytest.approx(v["b"]["clicked_lists"] / v["b"]["exposures"])
    ctr_b = [c for c in summary["comparisons"] if c["variant"] == "b" and c["metric"] == "ctr"]
    # b against the control and against the champion's arm (a): both significant, +60%
    assert {c["against"] for c in ctr_b} == {"control", "a"}
    for c in ctr_b:
        assert c["significant"] is True and c["ci_low"] < 0.6 < c["ci_high"]
        assert c["p_value"] >= c["p_value_raw"]  # Holm never lowers a p-value
    ctr_a = next(c for c in summary["comparisons"] if c["variant"] == "a"
                 and c["metric"] == "ctr")
    assert ctr_a["significant"] is False and ctr_a["ci_low"] < 0 < ctr_a["ci_high"]
    for key in ("variant", "against", "metric", "lift", "ci_low", "ci_high", "p_value",
                "significant"):
        assert all(key in c for c in summary["comparisons"])
    assert summary["data"]["cuped_theta"]["conversion"] is not None
    assert json.loads(json.dumps(summary)) == summary  # plain JSON, no NaN


def test_no_effect_gives_no_winner():
    d = definition(minimum_users=500)
    exposures, events, pre = simulate(d, 5000, ctr={"control": 0.1, "a": 0.1, "b": 0.1},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=4)
    summary = run(d, exposures, events, pre)
    assert summary["verdict"] == NO_WINNER and summary["winner"] is None


def test_thin_data_gets_a_verdict_and_no_p_values():
    d = definition(minimum_users=1000)
    exposures, events, pre = simulate(d, 900, ctr={"control": 0.1, "a": 0.1, "b": 0.3},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=2)
    summary = run(d, exposures, events, pre)
    assert summary["verdict"] == NOT_ENOUGH_USERS and summary["winner"] is None
    assert set(summary["data"]["thin_variants"]) == {"control", "a", "b"}
    assert all(c["p_value"] is None and c["significant"] is False
               for c in summary["comparisons"])
    assert all(g["passed"] is None for g in summary["guardrails"])


def test_an_srm_from_dropping_5_percent_of_one_arm_s_exposures_is_flagged():
    """An exposure in the experimentation sense (GrowthBook's): a user entering the test.
    A client that fails to log them for 5% of arm b's users (all their lists) must be
    caught; the lists of the remaining users are untouched."""
    d = definition(minimum_users=500)
    exposures, events, pre = simulate(d, 40_000, ctr={"control": 0.1, "a": 0.1, "b": 0.1},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=3)
    assert run(d, exposures, events, pre)["srm"]["flagged"] is False
    rng = np.random.default_rng(0)
    in_b = exposures.loc[exposures["variant"] == "b", "user_id"].unique()
    lost = set(rng.choice(in_b, int(0.05 * len(in_b)), replace=False))
    summary = run(d, exposures[~exposures["user_id"].isin(lost)], events, pre)
    assert summary["srm"]["flagged"] is True
    assert summary["verdict"] == SRM_VERDICT and summary["winner"] is None
    assert all(c["p_value"] is None for c in summary["comparisons"])


def test_a_broken_guardrail_keeps_a_ctr_winner_from_winning():
    d = definition(minimum_users=500, guardrails=[{"metric": "conversion", "margin": 0.05}])
    exposures, events, pre = simulate(d, 8000, ctr={"control": 0.1, "a": 0.1, "b": 0.16},
                                      buy={"control": 0.6, "a": 0.6, "b": 0.05}, seed=5)
    summary = run(d, exposures, events, pre)
    guard = next(g for g in summary["guardrails"] if g["variant"] == "b")
    assert guard["passed"] is False and guard["lift"] < -0.05
    assert summary["winner"] != "b"


def test_the_sequential_option_reports_the_look_and_its_boundary():
    d = definition(minimum_users=500, sequential=True, planned_users=4000)
    exposures, events, pre = simulate(d, 6000, ctr={"control": 0.1, "a": 0.1, "b": 0.16},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=1)
    first = run(d, exposures, events, pre, looks=[0.1, 0.2])
    sequential = first["sequential"]
    assert sequential["looks"][:2] == [0.1, 0.2] and 0.4 < sequential["information_fraction"] < 0.6
    assert sequential["boundary_z"] > 2.4  # early looks pay for peeking
    assert first["winner"] == "b"


def test_the_report_escapes_what_it_shows_and_draws_both_plots():
    d = definition(minimum_users=100)
    exposures, events, pre = simulate(d, 1500, ctr={"control": 0.1, "a": 0.1, "b": 0.2},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=6)
    outcomes = user_outcomes(exposures, events, START, d.attribution_hours, pre)
    summary = analyze(AnalysisInput(d, outcomes, Assigner(d).expected_shares()))
    summary["data"]["dwell_time"] = "<script>alert(1)</script>"
    page = report_html(summary, outcomes.daily)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") == 2 and "seeds-ab" in page


def test_the_summary_rows_are_typed_records_built_whole():
    from pydantic import ValidationError

    from recsys.experiments.analysis import Comparison, GuardrailCheck

    d = definition(minimum_users=100, secondary_metrics=["conversion"])
    exposures, events, pre = simulate(d, 1500, ctr={"control": 0.1, "a": 0.1, "b": 0.2},
                                      buy={"control": 0.3, "a": 0.3, "b": 0.3}, seed=6)
    summary = json.loads(json.dumps(run(d, exposures, events, pre)))
    rows = [Comparison.model_validate(c) for c in summary["comparisons"]]
    assert [(r.variant, r.against, r.metric) for r in rows] == [
        ("a", "control", "ctr"), ("a", "control", "conversion"), ("b", "control", "ctr"),
        ("b", "control", "conversion"), ("b", "a", "ctr")]
    for row in rows:  # each test where it applies, None elsewhere
        assert (row.chi_square_p is not None) == (row.metric == "ctr")
        assert (row.welch_p is not None) == (row.metric == "conversion")
        assert row.p_value is not None and row.p_value_raw is not None
        assert row.p_value >= row.p_value_raw
    guards = [GuardrailCheck.model_validate(g) for g in summary["guardrails"]]
    assert [(g.variant, g.metric, g.margin) for g in guards] == [
        ("a", "conversion", 0.05), ("b", "conversion", 0.05)]
    with pytest.raises(ValidationError, match="frozen"):
        rows[0].significant = True
    with pytest.raises(ValidationError, match="extra"):
        Comparison.model_validate({**summary["comparisons"][0], "note": "x"})
