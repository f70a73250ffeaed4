"""The stream dashboard queries only metrics the collector's scrape really exports."""
import uuid

import pytest

from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.lake_sink import GROUP as SINK_GROUP
from recsys.streaming.lake_sink import SinkStats
from recsys.streaming.metrics import StreamSources
from recsys.streaming.processor import GROUP as PROCESSOR_GROUP
from recsys.streaming.processor import ProcessorStats
from recsys.streaming.redis_bus import RedisStreamBus
from tests.conftest import REPO
from tests.metric_names import dashboard_metrics, exported_metrics
from tests.streaming.conftest import collector_client, keyed_access

pytestmark = pytest.mark.integration


def test_every_stream_panel_names_metrics_the_collector_exports():
    bus = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    observed = StreamSources(None, bus, (PROCESSOR_GROUP, SINK_GROUP), ProcessorStats(),
                             SinkStats(), lambda: {"processor": {"running": True,
                                                                 "restarts": 0}})
    client = collector_client(bus, access=keyed_access(metrics_keys=BearerKeys(["m"])),
                              observed=observed)
    try:
        scrape = client.get("/metrics", headers={"Authorization": "Bearer m"}).text
    finally:
        bus.reset()
    exported = exported_metrics(scrape)
    panels = dashboard_metrics(REPO / "infra" / "grafana" / "recsys-stream.json")
    assert len(panels) == 7
    for title, names in panels.items():
        assert names and names <= exported, (title, names - exported)
