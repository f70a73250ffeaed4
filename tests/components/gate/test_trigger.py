import json

import pytest

from recsys.components.gate.trigger import drift_trigger, trigger_tags
from recsys.core.errors import ConfigError


def test_a_drift_summary_becomes_retrain_tags():
    summary = {"drift_detected": True, "report_url": "/lake/reports/drift/x/report.html",
               "monitoring_run_id": "abc123", "drifted_share": 0.4,
               "top_drifted_columns": ["price", "utm_source"]}
    tags = trigger_tags(drift_trigger(summary))
    assert tags == {"retrain.trigger": "drift",
                    "retrain.report_url": "/lake/reports/drift/x/report.html",
                    "retrain.monitoring_run_id": "abc123", "retrain.drifted_share": "0.4",
                    "retrain.top_drifted_columns": "price,utm_source"}


def test_no_trigger_means_a_scheduled_or_manual_run():
    assert trigger_tags("") == {"retrain.trigger": "schedule or manual"}


@pytest.mark.parametrize("text", ["not json", json.dumps([1, 2]), json.dumps({"a": 1})])
def test_a_malformed_trigger_is_refused_naming_it(text):
    with pytest.raises(ConfigError, match="trigger must be a JSON object"):
        trigger_tags(text)
