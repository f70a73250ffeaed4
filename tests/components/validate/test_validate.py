"""validate: every rule's reason, the bad-row gate, what reaches the lake, the KFP body."""
import json

import pandas as pd
import pytest

from recsys.components.validate.component import validate_op
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import (
    publish_result,
    raise_if_failed,
    validate_events,
)
from recsys.core.data.event_store import read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import EVENT_SCHEMA, conform_events
from recsys.core.errors import DataQualityError

NOW = pd.Timestamp("2026-11-01T12:00:00Z")


def event(n: int, **changes) -> dict:
    row = {"event_id": f"e{n}", "user_id": f"u{n % 3}", "item_id": f"i{n % 5}",
           "session_id": "s1", "event_type": "view",
           "timestamp": NOW - pd.Timedelta(hours=n + 1), "price": 10.0 + n,
           "category": "books", "rating": None}
    row.update(changes)
    return row


def frame(rows: list[dict]) -> pd.DataFrame:
    return conform_events(pd.DataFrame(rows), "test")


BAD = {
    "missing user_id": event(100, user_id=None),
    "missing item_id": event(101, item_id=""),
    "unknown event_type: wishlist": event(102, event_type="wishlist"),
    "future timestamp": event(103, timestamp=NOW + pd.Timedelta(hours=1)),
    "timestamp too old": event(104, timestamp=NOW - pd.Timedelta(days=4000)),
    "price out of range: -1.0": event(105, price=-1.0),
    "rating out of range: 11.0": event(106, event_type="rating", rating=11.0),
    "malformed: bad json": event(107, parse_error="bad json"),
    "search without a query": event(108, event_type="search", item_id=None),
}


def test_each_rule_quarantines_with_its_reason_and_good_rows_pass():
    good = [event(n) for n in range(40)]
    result = validate_events(frame(good + list(BAD.values())), ValidationConfig(), now=NOW)
    assert len(result.clean) == 40 and result.report.rows_quarantined == len(BAD)
    reasons = dict(zip(result.quarantine["event_id"], result.quarantine["reason"]))
    for expected, row in BAD.items():
        assert reasons[row["event_id"]].startswith(expected), (expected, reasons[row["event_id"]])
    assert result.report.bad_ratio == pytest.approx(len(BAD) / 49, abs=1e-6)
    assert not result.report.passed  # 9 of 49 is above the default 5%
    with pytest.raises(DataQualityError, match="9 of 49 rows are bad"):
        raise_if_failed(result.report)


def test_a_row_failing_several_rules_lists_every_reason():
    row = event(1, user_id=None, price=-5.0)
    result = validate_events(frame([row] + [event(n) for n in range(2, 60)]),
                             ValidationConfig(), now=NOW)
    [reason] = result.quarantine["reason"].tolist()
    assert "missing user_id" in reason and "price out of range: -5.0" in reason
    assert result.report.passed


def test_no_clean_rows_fails_whatever_the_threshold():
    result = validate_events(frame([event(1, item_id=None)]),
                             ValidationConfig(max_bad_ratio=1.0), now=NOW)
    with pytest.raises(DataQualityError, match="no clean rows among 1"):
        raise_if_failed(result.report)


def test_published_clean_rows_and_quarantine_land_in_the_lake_once(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    rows = [event(n) for n in range(30)] + [BAD["missing user_id"]]
    result = validate_events(frame(rows), ValidationConfig(), now=NOW)
    publish_result(lake, result)
    publish_result(lake, result)  # a retried step
    clean = read_window(lake, "clean/events", EVENT_SCHEMA)
    assert sorted(clean["event_id"]) == sorted(f"e{n}" for n in range(30))
    assert lake.list("quarantine/")


def test_component_body_refuses_a_bad_batch_and_writes_nothing(tmp_path):
    class Artifact:
        def __init__(self, path):
            self.path = str(path)
            self.metrics = {}

        def log_metric(self, name, value):
            self.metrics[name] = value

    # the body validates against the real clock: only rules that do not depend on it
    bad = [row for reason, row in BAD.items() if "timestamp" not in reason]
    source = tmp_path / "events.parquet"
    frame([event(n) for n in range(10)] + bad).to_parquet(source)
    outputs = {name: Artifact(tmp_path / name) for name in ("clean", "report", "metrics")}
    lake_dir = tmp_path / "lake"
    with pytest.raises(DataQualityError):
        validate_op.python_func(events=Artifact(source), lake_uri=str(lake_dir),
                                max_bad_ratio=0.05, clean=outputs["clean"],
                                quality_report=outputs["report"], metrics=outputs["metrics"])
    assert not lake_dir.exists()
    validate_op.python_func(events=Artifact(source), lake_uri=str(lake_dir), max_bad_ratio=0.5,
                            clean=outputs["clean"], quality_report=outputs["report"],
                            metrics=outputs["metrics"])
    assert len(pd.read_parquet(outputs["clean"].path)) == 10
    assert json.loads((tmp_path / "report").read_text())["rows_quarantined"] == len(bad)
    assert outputs["metrics"].metrics["rows_quarantined"] == len(bad)
    assert len(read_window(Lake(str(lake_dir)), "clean/events", EVENT_SCHEMA)) == 10


def test_a_search_needs_a_query_not_an_item():
    rows = [event(n) for n in range(10)] + [
        event(50, event_type="search", item_id=None, query="linen shirt"),
        event(51, event_type="click", item_id="i1", source="recommendations",
              recommendation_id="rec-1"),
        event(52, event_type="click", item_id=None)]
    result = validate_events(frame(rows), ValidationConfig(), now=NOW)
    assert result.quarantine["reason"].tolist() == ["missing item_id"]
    assert "query" not in result.report.null_warnings  # sparse by nature
    clean = result.clean.set_index("event_id")
    assert clean.loc["e50", "query"] == "linen shirt" and pd.isna(clean.loc["e50", "item_id"])
    assert clean.loc["e51", "recommendation_id"] == "rec-1"
