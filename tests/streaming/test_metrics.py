"""The real-time path's Prometheus metrics, scraped from the collector over a real Redis."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.lake_sink import GROUP as SINK_GROUP
from recsys.streaming.metrics import StreamSources
from recsys.streaming.processor import GROUP as PROCESSOR_GROUP
from recsys.streaming.processor import ProcessorStats
from recsys.streaming.redis_bus import RedisStreamBus
from tests.streaming.conftest import collector_client, keyed_access, rich_event

pytestmark = pytest.mark.integration
SCRAPE = {"Authorization": "Bearer prometheus-token"}





def scrape(client) -> dict[tuple, float]:
    answer = client.get("/metrics", headers=SCRAPE)
    assert answer.status_code == 200, answer.text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples}


def test_collector_counts_lag_and_dead_letters_are_scraped(bus):
    stats = ProcessorStats(applied=7, duplicates=1, late=2)
    observed = StreamSources(None, bus, (PROCESSOR_GROUP, SINK_GROUP), processor_stats=stats)
    access = keyed_access(metrics_keys=BearerKeys(["prometheus-token"]))
    client = collector_client(bus, access=access, observed=observed)
    first = client.post("/events", json=[rich_event(1), rich_event(2), rich_event(1)])
    assert first.status_code == 202
    bad = client.post("/events", json=[rich_event(3, event_type="teleport"), rich_event(4)])
    assert bad.status_code == 422
    assert client.get("/metrics").status_code == 401  # the write key is not a metrics token

    values = scrape(client)
    assert values[("recsys_collector_events_total", (("outcome", "accepted"),))] == 3
    assert values[("recsys_collector_events_total", (("outcome", "duplicate"),))] == 1
    assert values[("recsys_collector_events_total", (("outcome", "rejected"),))] == 1
    assert values[("recsys_collector_rejected_events_total", (("field", "event_type"),))] == 1
    assert values[("recsys_collector_requests_total", ())] == 2
    assert values[("recsys_stream_lag", (("group", PROCESSOR_GROUP),))] == 3  # nothing read
    assert values[("recsys_stream_lag", (("group", SINK_GROUP),))] == 3
    assert values[("recsys_stream_dead_letters", ())] == 1
    assert values[("recsys_stream_bus_up", ())] == 1
    assert values[("recsys_processor_events_total", (("outcome", "late"),))] == 2

    messages = bus.read(PROCESSOR_GROUP, "c1", 10, 0)
    bus.ack(PROCESSOR_GROUP, messages)
    after = scrape(client)
    assert after[("recsys_stream_lag", (("group", PROCESSOR_GROUP),))] == 0
    assert after[("recsys_stream_lag", (("group", SINK_GROUP),))] == 3


def test_a_down_bus_still_answers_the_scrape():
    import redis

    down = RedisStreamBus(stream="test:down")
    down.client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    access = keyed_access(metrics_keys=BearerKeys(["prometheus-token"]))
    client = collector_client(down, access=access,
                              observed=StreamSources(None, down, (SINK_GROUP,)))
    values = scrape(client)
    assert values[("recsys_stream_bus_up", ())] == 0
    assert not [k for k in values if k[0] == "recsys_stream_lag"]
