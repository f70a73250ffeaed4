"""The evaluate step's artifact as the gate reads it: a round trip, and refusals by field."""
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recsys.core.lifecycle.evaluation import EvaluationRecord, PairedBootstrap

RECORD = {
    "primary_metric": "ndcg_at_10", "best": "ease",
    "candidates": {"ease": {"metrics": {"ndcg_at_10": 0.3, "recall_at_20": 0.2},
                            "run_id": "r1", "model_uri": "models:/m-1"},
                   "popularity": {"metrics": {"ndcg_at_10": 0.1}, "run_id": "r2",
                                  "model_uri": None}},
    "baseline": {"ndcg_at_10": 0.1},
    "champion": {"version": "3", "metrics": {"ndcg_at_10": 0.25}},
    "paired_bootstrap": {"metric": "ndcg_at_10", "difference": 0.05, "low": 0.01,
                         "high": 0.09, "confidence": 0.95, "samples": 1000, "users": 40},
    "holdout_rows": 120, "holdout_users": 40,
}


def test_the_artifact_round_trips_through_json_with_the_same_layout():
    record = EvaluationRecord.model_validate(RECORD)
    assert record.best_candidate.metrics == {"ndcg_at_10": 0.3, "recall_at_20": 0.2}
    assert record.champion is not None and record.champion.version == "3"
    assert record.paired_bootstrap == PairedBootstrap(
        metric="ndcg_at_10", difference=0.05, low=0.01, high=0.09, confidence=0.95,
        samples=1000, users=40)
    written = json.dumps(record.model_dump(mode="json"))
    assert json.loads(written) == RECORD
    assert EvaluationRecord.model_validate(json.loads(written)) == record


def test_a_metric_that_could_not_be_computed_survives_as_nan():
    record = EvaluationRecord.model_validate(
        {**RECORD, "baseline": {"ndcg_at_10": math.nan}})
    again = EvaluationRecord.model_validate(json.loads(json.dumps(record.model_dump(mode="json"))))
    assert math.isnan(again.baseline["ndcg_at_10"])


@pytest.mark.parametrize("change,field", [
    ({"best": "svd"}, "best 'svd' is not among the candidates ['ease', 'popularity']"),
    ({"candidates": {}}, "candidates"),
    ({"holdout_users": -1}, "holdout_users"),
    ({"champion": {"metrics": {}}}, "champion.version"),
    ({"paired_bootstrap": {**RECORD["paired_bootstrap"], "low": "low"}}, "paired_bootstrap.low"),
    ({"paired_bootstrap": {**RECORD["paired_bootstrap"], "confidence": 95}},
     "paired_bootstrap.confidence"),
    ({"candidates": {"ease": {"metrics": {"ndcg_at_10": "high"}}}},
     "candidates.ease.metrics.ndcg_at_10"),
    ({"baseline_metrics": {}}, "baseline_metrics"),
])
def test_a_malformed_artifact_is_refused_naming_the_field(change, field):
    with pytest.raises(ValidationError) as caught:
        EvaluationRecord.model_validate({**RECORD, **change})
    assert field in str(caught.value)


def test_a_missing_field_is_named():
    partial = {k: v for k, v in RECORD.items() if k != "primary_metric"}
    with pytest.raises(ValidationError, match="primary_metric"):
        EvaluationRecord.model_validate(partial)


JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
FIELDS = st.sampled_from(sorted(RECORD))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=4))
def test_any_json_is_either_a_record_or_refused_by_validation(changes):
    try:
        record = EvaluationRecord.model_validate({**RECORD, **changes})
    except ValidationError:
        return
    assert record.best in record.candidates


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12),
                       st.floats(allow_nan=False), min_size=1, max_size=5))
def test_any_metrics_round_trip(metrics):
    candidates = {"m": {"metrics": metrics, "run_id": None, "model_uri": None}}
    record = EvaluationRecord.model_validate({**RECORD, "best": "m", "candidates": candidates})
    again = EvaluationRecord.model_validate(json.loads(json.dumps(record.model_dump(mode="json"))))
    assert again == record
