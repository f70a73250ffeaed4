"""Decision table for the promotion gate."""
import pytest

from recsys.core.lifecycle.evaluation import PairedBootstrap
from recsys.core.lifecycle.gate import GatePolicy, decide

POLICY = GatePolicy(primary_metric="ndcg_at_10", min_relative_improvement=0.05,
                    guardrails={"coverage_at_10": 0.10})


@pytest.mark.parametrize("candidate,reference,promote,why", [
    ({"ndcg_at_10": 0.30, "coverage_at_10": 0.5}, {"ndcg_at_10": 0.20, "coverage_at_10": 0.5},
     True, "+50.00% (meets"),
    ({"ndcg_at_10": 0.205, "coverage_at_10": 0.5}, {"ndcg_at_10": 0.20, "coverage_at_10": 0.5},
     False, "+2.50% (below"),
    ({"ndcg_at_10": 0.20, "coverage_at_10": 0.5}, {"ndcg_at_10": 0.20, "coverage_at_10": 0.5},
     False, "+0.00% (below"),
    ({"ndcg_at_10": 0.30, "coverage_at_10": 0.40}, {"ndcg_at_10": 0.20, "coverage_at_10": 0.5},
     False, "-20.00% (exceeds the allowed -10%)"),
    ({"ndcg_at_10": 0.30, "coverage_at_10": 0.46}, {"ndcg_at_10": 0.20, "coverage_at_10": 0.5},
     True, "-8.00% (within"),
    ({"ndcg_at_10": 0.10, "coverage_at_10": 0.5}, {"ndcg_at_10": 0.0, "coverage_at_10": 0.5},
     True, "+inf%"),
    ({"coverage_at_10": 0.5}, {"ndcg_at_10": 0.2, "coverage_at_10": 0.5},
     False, "candidate has no value for ndcg_at_10"),
    ({"ndcg_at_10": 0.3, "coverage_at_10": float("nan")}, {"ndcg_at_10": 0.2,
                                                           "coverage_at_10": 0.5},
     False, "candidate has no value for coverage_at_10"),
])
def test_decision_table(candidate, reference, promote, why):
    decision = decide(candidate, reference, POLICY)
    assert decision.promote is promote
    assert any(why in reason for reason in decision.reasons), decision.reasons


def test_first_model_is_compared_with_the_baseline():
    decision = decide({"ndcg_at_10": 0.1, "coverage_at_10": 0.2},
                      {"ndcg_at_10": 0.12, "coverage_at_10": 0.01}, POLICY,
                      against="popularity baseline")
    assert not decision.promote
    assert decision.against == "popularity baseline"
    assert "vs popularity baseline 0.1200" in decision.reasons[0]
    assert decision.relative_improvement == pytest.approx(-1 / 6)


SIGNIFICANT = GatePolicy(primary_metric="ndcg_at_10", min_relative_improvement=0.05,
                         guardrails={}, require_significant=True)
BETTER = ({"ndcg_at_10": 0.30}, {"ndcg_at_10": 0.20})


def bootstrap(metric="ndcg_at_10", low=0.04, high=0.16) -> PairedBootstrap:
    return PairedBootstrap(metric=metric, difference=0.1, low=low, high=high, confidence=0.95)


@pytest.mark.parametrize("paired,promote,why", [
    (bootstrap(), True, "95% CI [+0.0400, +0.1600] (above zero)"),
    (bootstrap(low=-0.01, high=0.21), False, "(not above zero)"),
    (None, False, "significance required but no paired bootstrap"),
    (bootstrap("recall_at_10", 0.05, 0.2), False, "no paired bootstrap of ndcg_at_10"),
])
def test_significance_policy_needs_the_paired_lower_bound_above_zero(paired, promote, why):
    decision = decide(*BETTER, SIGNIFICANT, paired=paired)
    assert decision.promote is promote
    assert any(why in reason for reason in decision.reasons), decision.reasons


def test_significance_is_ignored_unless_required():
    paired = bootstrap(low=-0.5, high=0.6)
    assert decide(*BETTER, SIGNIFICANT.model_copy(update={"require_significant": False}),
                  paired=paired).promote
