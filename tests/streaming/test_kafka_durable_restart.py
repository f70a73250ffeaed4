"""A broker killed (SIGKILL) while the collector publishes, and restarted on the same
durable storage, loses no acknowledged event: Tansu on S3 (moto's server), a broker of the
test's own. The collector is built from Settings as `stream up` builds it (acks=all, 202
only after the broker acknowledged) and is never restarted."""
import threading
import time
import uuid

import boto3
import pytest

from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from recsys.streaming.runtime import build_bus
from recsys.tools.kafka_broker import s3_storage
from tests.streaming.conftest import collector_client, rich_event
from tests.streaming.kafka_broker import TansuBroker
from tests.streaming.test_kafka_broker_faults import kafka_settings, on_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BATCH = 5


@pytest.fixture
def durable_broker(s3_server, tmp_path):
    bucket = f"tansu-{uuid.uuid4().hex[:8]}"  # moto's state outlives one test: own bucket
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    instance = TansuBroker(tmp_path / "broker.log",
                           storage=s3_storage(s3_server, bucket, "testing", "testing")).start()
    yield instance
    instance.stop()


def batch(first: int) -> list[dict]:
    return [rich_event(n, user_id=f"u{n % 7}") for n in range(first, first + BATCH)]


class Poster(threading.Thread):
    """Posts batches of new events one after the other until stopped, and keeps what the
    collector answered to each."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.stopping = threading.Event()
        self.acknowledged: set[str] = set()
        self.posted: set[str] = set()
        self.refusals: list = []

    def run(self) -> None:
        first = 0
        while not self.stopping.is_set():
            body = batch(first)
            ids = {event["event_id"] for event in body}
            self.posted |= ids
            response = self.client.post("/events", json=body)
            if response.status_code == 202:
                self.acknowledged |= ids
            else:
                self.refusals.append(response)
            first += BATCH


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_a_broker_killed_mid_publish_and_restarted_on_s3_keeps_every_acknowledged_event(
        durable_broker, tmp_path, idempotent):
    """Idempotent: Tansu 0.6 fences the producer (PRODUCER_FENCED) after its sends timed out;
    the bus starts a new producer and the collector answers 202 again by itself."""
    settings = kafka_settings(durable_broker, kafka_idempotent_producer=idempotent)
    bus = build_bus(settings)  # a worker's start: creates the topics
    client = collector_client(bus)
    poster = Poster(client)
    poster.start()
    deadline = time.monotonic() + 60
    while len(poster.acknowledged) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(poster.acknowledged) >= 200
    durable_broker.kill()  # mid-publish: a batch may be in flight
    deadline = time.monotonic() + 30
    while len(poster.refusals) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    poster.stopping.set()
    poster.join(30)
    acknowledged_before = set(poster.acknowledged)
    assert len(poster.refusals) >= 3
    for refused in poster.refusals:  # the broker is down: 503, try again later
        assert refused.status_code == 503, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["stored"] in {0, "unknown"}

    durable_broker.start()  # same port, same bucket
    # the topics came back as they were made: a start that only checks them passes
    build_bus(settings.model_copy(update={"kafka_topics": "check"})).close()
    after = batch(1_000_000)
    deadline = time.monotonic() + 20
    response = client.post("/events", json=after)  # the same collector, not restarted
    while response.status_code != 202 and time.monotonic() < deadline:
        time.sleep(0.3)
        response = client.post("/events", json=after)
    assert response.status_code == 202, response.text
    acknowledged = acknowledged_before | {event["event_id"] for event in after}

    ids = on_topic(bus, seconds=20)
    assert acknowledged <= set(ids), sorted(acknowledged - set(ids))[:10]  # none lost
    assert set(ids) <= poster.posted | acknowledged  # nothing that was never posted
    for event_id in acknowledged:  # an acknowledged send is stored once
        assert ids.count(event_id) == 1, (event_id, ids.count(event_id))
    lake = Lake(str(tmp_path / "lake"))
    LakeSink(bus, lake, SinkConfig(block_ms=1000)).run(idle_exit_polls=3)
    landed = list(read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)["event_id"])
    assert len(landed) == len(set(landed))  # once each
    assert set(landed) == set(ids)  # every acknowledged one, and any stored unacknowledged
    bus.close()
