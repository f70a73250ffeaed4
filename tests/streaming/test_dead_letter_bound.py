"""The dead-letter stream has the main stream's back-pressure: at its bound the collector
answers 503 (nothing stored) instead of trimming refused events the quarantine sink has not
landed; once they are quarantined there is room again."""
import uuid

import pytest

from recsys.core.data.lake import Lake
from recsys.core.settings import Settings
from recsys.streaming.quarantine_sink import QuarantineSink, QuarantineSinkConfig
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.streaming.runtime import build_bus
from tests.streaming.conftest import collector_client, rich_event

pytestmark = pytest.mark.integration
BOUND = 150


@pytest.fixture
def small_bus():
    bus = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}", dead_letter_length=BOUND)
    yield bus
    bus.dead_letter_bus().reset()
    bus.reset()


def bad(n: int) -> dict:
    return rich_event(n, event_type="teleport")


def test_refused_events_past_the_bound_are_refused_with_503_not_trimmed(small_bus, tmp_path):
    client = collector_client(small_bus)
    sink = QuarantineSink(small_bus.dead_letter_bus(), Lake(str(tmp_path / "lake")),
                          QuarantineSinkConfig(block_ms=10))
    sink.reader.read()  # the quarantine sink's group exists (and has read nothing yet)
    answers = [client.post("/events", json=[bad(10 * b + i) for i in range(10)] +
                           [rich_event(1000 + b)]).status_code for b in range(20)]
    assert answers == [422] * 15 + [503] * 5
    assert small_bus.dead_letter_count() == BOUND  # every refused event acknowledged, kept
    kept = {d["raw"]["event_id"] for d in small_bus.dead_letters(count=1000)}
    assert kept == {f"e{n}" for n in range(BOUND)}
    assert small_bus.length() == 15  # the valid events of the 503 requests: not stored

    sink.run(idle_exit_polls=2)  # quarantined and acknowledged: they leave the stream
    assert sink.stats.written == BOUND and small_bus.dead_letter_count() == 0
    assert client.post("/events", json=[bad(500)]).status_code == 422


def test_the_dead_letter_bound_is_a_setting(tmp_path):
    settings = Settings(state_dir=tmp_path, bus_dead_letter_max_length=7,
                        event_stream=f"test:{uuid.uuid4().hex[:8]}")
    bus = build_bus(settings)
    assert bus.dead_letter_length == 7 and bus.dead_letter_bus().max_length == 7
