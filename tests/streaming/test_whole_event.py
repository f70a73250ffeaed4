"""The seeds' own example event, and search and click events, through the real-time path:
collector (HTTP) -> Redis bus -> lake sink -> extract, every field present."""
import copy

import pandas as pd
import pytest

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.core.data.lake import Lake
from recsys.streaming.collector import CollectorLimits
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from tests.components.extract.test_whole_event import SEEDS_EVENT, assert_seeds_row
from tests.streaming.conftest import collector_client

pytestmark = pytest.mark.integration


def test_the_seeds_example_round_trips_to_extract_with_every_field(bus, tmp_path):
    client = collector_client(bus, limits=CollectorLimits(max_event_age_days=None))
    seeds = copy.deepcopy(SEEDS_EVENT)
    search = {"event_id": "search-1", "user_id": seeds["user_id"], "event_type": "search",
              "session_id": "session_xyz_789", "timestamp": seeds["timestamp"] + 1000,
              "properties": {"query": "linen shirt"}}
    click = {"event_id": "click-1", "user_id": seeds["user_id"], "event_type": "click",
             "session_id": "session_xyz_789", "timestamp": seeds["timestamp"] + 2000,
             "properties": {"product_id": "prod_9", "source": "recommendations",
                            "recommendation_id": "rec-77", "position": 3},
             "context": {"page": {"url": "/"}, "screen": {"width": 390}}}
    answer = client.post("/events", json=[seeds, search, click, {**search, "event_id": "bad",
                                                                 "properties": {}}])
    assert answer.status_code == 422, answer.text  # some refused: named, the rest stored
    body = answer.json()
    assert body["accepted"] == 3 and [r["event_id"] for r in body["errors"]] == ["bad"]
    assert body["errors"][0]["errors"][0]["field"] == "properties.query"
    lake = Lake(str(tmp_path / "lake"))
    sink = LakeSink(bus, lake, SinkConfig(block_ms=10, max_events=10))
    sink.run(idle_exit_polls=2)
    assert sink.stats.written == 3
    _, events = extract(ExtractConfig(source="lake"), lake)
    events = events.set_index("event_id", drop=False)
    assert_seeds_row(events.loc["evt_1752320520123_abcdefg"])
    assert pd.isna(events.loc["evt_1752320520123_abcdefg", "extra"])
    assert events.loc["search-1", "query"] == "linen shirt"
    assert pd.isna(events.loc["search-1", "item_id"])
    assert events.loc["click-1", ["event_type", "item_id", "source", "recommendation_id"]] \
        .tolist() == ["click", "prod_9", "recommendations", "rec-77"]
    assert events.loc["click-1", "extra"] == \
        '{"context":{"screen":{"width":390}},"properties":{"position":3}}'
