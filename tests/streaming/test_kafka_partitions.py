"""Scale-out on Kafka (a real broker, Tansu): two processors in one consumer group share the
topic's partitions by Kafka's group protocol; one is killed with SIGKILL and the other takes
its partitions over within the session timeout, continuing their users' sessions from the
state in Redis. Every user's features equal the batch definitions at the end (the checks of
test_end_to_end.py), and the lake holds every accepted event once."""
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
import redis
import uvicorn

from recsys.benchmarks.stream_load import worker_env
from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.online.redis_keys import RedisKeys
from recsys.core.settings import Settings
from recsys.streaming.collector import create_app
from recsys.streaming.lake_sink import SinkConfig
from recsys.streaming.partitions import partition_of
from recsys.streaming.processor import GROUP
from recsys.streaming.replay import replay
from recsys.streaming.runtime import build_bus, build_sink
from recsys.tools.local_services import temporary_postgres_database
from tests.conftest import REPO, free_port
from tests.streaming.conftest import WRITE_KEY, keyed_access
from tests.streaming.test_end_to_end import check_against_batch

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REDIS_DB = 15  # Feast's Redis online store writes keys of its own: a db to flush
PARTITIONS = 4


@pytest.fixture
def kafka_stream(tmp_path, kafka_bootstrap):
    """Production profile (Redis online store, PostgreSQL registry) on a Kafka topic of 4
    partitions; a collector on it; the shop's events split in two files."""
    with temporary_postgres_database("feast_kafka_scale") as registry:
        settings = Settings(
            state_dir=tmp_path / "state", feast_profile="production",
            feast_registry_url=registry, redis_url=f"redis://127.0.0.1:6379/{REDIS_DB}",
            event_stream=f"test.{uuid.uuid4().hex[:8]}", event_bus="kafka",
            kafka_bootstrap=kafka_bootstrap, kafka_partitions=PARTITIONS,
            kafka_replication_factor=1, kafka_session_timeout_seconds=2.0,
            kafka_idempotent_producer=False)
        config = ShopConfig(events=3000, seed=5, days=2, dirt=DirtConfig(duplicates=0.03))
        whole = tmp_path / "sessions.jsonl"
        write_shop(generate_shop(config), "jsonl", whole, config)
        lines = whole.read_text().splitlines(keepends=True)
        halves = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
        halves[0].write_text("".join(lines[:len(lines) // 2]))
        halves[1].write_text("".join(lines[len(lines) // 2:]))
        bus = build_bus(settings)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(bus, keyed_access()),
                                               host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        yield settings, halves, f"http://127.0.0.1:{port}/events"
        server.should_exit = True
        thread.join(timeout=5)
        bus.close()
        redis.Redis.from_url(settings.redis_url).flushdb()


def kafka_env(settings: Settings) -> dict:
    return {**worker_env(settings), "RECSYS_EVENT_BUS": "kafka",
            "RECSYS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "RECSYS_KAFKA_PARTITIONS": str(PARTITIONS), "RECSYS_KAFKA_REPLICATION_FACTOR": "1",
            "RECSYS_KAFKA_SESSION_TIMEOUT_SECONDS": "2", "RECSYS_LOG_LEVEL": "INFO",
            "RECSYS_KAFKA_IDEMPOTENT_PRODUCER": "false"}


def group_lag(settings: Settings) -> int:
    """Events of the topic the processors' group has not committed yet. The topic's ends are
    counted by reading it: Tansu 0.6 answers ListOffsets(latest) with the last record
    batch's base offset + 1, not the last record's (KafkaConsumer.end_offsets is wrong)."""
    from kafka import KafkaConsumer, TopicPartition

    from recsys.streaming.kafka_bus import kafka_group_id

    group_id = kafka_group_id(settings.event_stream, GROUP)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group_id,
                             enable_auto_commit=False)
    try:
        parts = [TopicPartition(settings.event_stream, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends = dict.fromkeys(parts, 0)
        # Tansu's ListOffsets(latest) is the last batch's base offset + 1: once the
        # position passes it, that whole batch (fetched whole) has been read. An empty poll
        # alone is no proof of the end on a loaded machine.
        latest = consumer.end_offsets(parts)
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < latest[tp] for tp in parts):
            assert time.monotonic() < deadline, "the topic could not be read to its end"
            for tp, records in consumer.poll(timeout_ms=300, max_records=10_000).items():
                ends[tp] = max(ends[tp], records[-1].offset + 1)
        for tp, records in consumer.poll(timeout_ms=300, max_records=10_000).items():
            ends[tp] = max(ends[tp], records[-1].offset + 1)
        return sum(ends[tp] - (consumer.committed(tp) or 0) for tp in parts)
    finally:
        consumer.close()


def owned(log: Path, consumer: str) -> list[list[int]]:
    """Every assignment the processor's log names, in order."""
    pattern = rf"consumer {consumer} owns partitions \[([0-9, ]*)\]"
    return [[int(p) for p in found.split(",") if p.strip()]
            for found in re.findall(pattern, log.read_text())]


def test_a_killed_processors_partitions_are_taken_over_and_no_result_changes(kafka_stream,
                                                                            tmp_path):
    settings, halves, url = kafka_stream
    first = replay(halves[0], url, rate=50_000, batch_size=100, write_key=WRITE_KEY)
    assert first.refused_batches == 0

    def start(consumer: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{consumer}.log"
        command = [sys.executable, "-m", "recsys.cli.main", "stream", "processor",
                   "--consumer", consumer, "--batch-size", "100"]
        with open(log, "wb") as out:
            return subprocess.Popen(command, env=kafka_env(settings), cwd=REPO, stdout=out,
                                    stderr=subprocess.STDOUT), log
    steady, steady_log = start("p-steady")
    doomed, doomed_log = start("p-doomed")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both members in the group, the first half done
        shares = [owned(steady_log, "p-steady"), owned(doomed_log, "p-doomed")]
        if all(shares) and all(s[-1] for s in shares) and group_lag(settings) == 0:
            break
        assert steady.poll() is None and doomed.poll() is None, doomed_log.read_text()[-3000:]
        time.sleep(0.2)
    shares = [owned(steady_log, "p-steady")[-1], owned(doomed_log, "p-doomed")[-1]]
    assert sorted(shares[0] + shares[1]) == list(range(PARTITIONS)), shares
    # the second half arrives over ~1.5 s (batches of 20); the member is killed while it
    # is reading and writing its share of it
    replayed = {}
    sender = threading.Thread(target=lambda: replayed.update(second=replay(
        halves[1], url, rate=1_000, batch_size=20, write_key=WRITE_KEY)))
    sender.start()
    time.sleep(0.5)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    sender.join(timeout=60)
    second = replayed["second"]
    assert second.refused_batches == 0
    deadline = time.monotonic() + 120
    while group_lag(settings) != 0 and time.monotonic() < deadline:
        assert steady.poll() is None, steady_log.read_text()[-3000:]
        time.sleep(0.2)
    steady.send_signal(signal.SIGTERM)  # stops after the current batch
    assert steady.wait(timeout=60) == 0, steady_log.read_text()[-3000:]
    assert owned(steady_log, "p-steady")[-1] == list(range(PARTITIONS))  # taken over
    assert group_lag(settings) == 0

    sink = build_sink(settings, SinkConfig(block_ms=1000, max_events=700))
    sink.run(idle_exit_polls=3)
    keys = RedisKeys(settings.event_stream)
    client = redis.Redis.from_url(settings.redis_url)

    def watermark(user: str) -> int:
        return int(client.get(keys.watermark_of(partition_of(user, PARTITIONS), PARTITIONS)))
    accepted = first.accepted + second.accepted
    assert check_against_batch(settings, watermark) == accepted
    assert sink.stats.written == accepted


@pytest.mark.integration
def test_a_processor_fires_only_the_timers_of_the_partitions_the_group_gives_it(
        kafka_bootstrap):
    """Two processors of one group: the one that does not own a partition leaves its cart
    timers (and watermark) alone, however due they are; the owner fires them."""
    from recsys.streaming.kafka_bus import KafkaBus
    from recsys.streaming.processor import ProcessorConfig, SessionProcessor
    from recsys.streaming.session_state import apply_events, new_state
    from tests.streaming.conftest import kafka_test_bus

    first = kafka_test_bus(kafka_bootstrap, partitions=PARTITIONS)
    buses = [first, KafkaBus(kafka_bootstrap, topic=first.topic,
                             session_timeout_ms=first.session_timeout_ms)]
    namespace = f"test:{uuid.uuid4().hex[:8]}"
    client = redis.Redis()
    processors = [SessionProcessor(bus, client, len, config=ProcessorConfig(
        consumer=f"c{k}", namespace=namespace, partitions=PARTITIONS, block_ms=200,
        read_ahead=False, lateness_ms=0)) for k, bus in enumerate(buses)]
    keys = RedisKeys(namespace)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # both in the group, the partitions split
            for processor in processors:
                processor.poll()
            owned = [processor.owned for processor in processors]
            if all(owned) and sorted(owned[0] + owned[1]) == list(range(PARTITIONS)):
                break
        assert all(owned) and sorted(owned[0] + owned[1]) == list(range(PARTITIONS)), owned
        users = {}
        for i in range(200):
            users.setdefault(partition_of(f"u{i}", PARTITIONS), []).append(f"u{i}")
        mine, theirs = owned[0][0], owned[1][0]
        carter = users[theirs][1]  # a due cart timer in the other processor's partition
        state = new_state()
        apply_events(state, [{"event_id": "c1", "user_id": carter, "item_id": "p",
                              "event_type": "add_to_cart", "timestamp": 1_000}], 0, 100)
        state["timer"] = 601_000  # the cart's deadline: 10 minutes after it
        client.set(f"{keys.session_state_prefix}{carter}", orjson.dumps(state))
        client.zadd(keys.cart_timers_of(theirs, PARTITIONS), {carter: 601_000})
        client.set(keys.watermark_of(theirs, PARTITIONS), 10**12)
        now = int(time.time() * 1000)
        buses[0].publish([{"event_id": "a1", "user_id": users[mine][0], "item_id": "p",
                           "event_type": "view", "timestamp": now}])
        deadline = time.monotonic() + 15
        while processors[0].stats.messages == 0 and time.monotonic() < deadline:
            processors[0].poll()
        assert processors[0].stats.messages == 1
        assert processors[0].stats.timers_fired == 0
        assert client.zscore(keys.cart_timers_of(theirs, PARTITIONS), carter) == 601_000
        assert int(client.get(keys.watermark_of(theirs, PARTITIONS))) == 10**12
        buses[0].publish([{"event_id": "b1", "user_id": users[theirs][0], "item_id": "p",
                           "event_type": "view", "timestamp": now}])
        deadline = time.monotonic() + 15
        while processors[1].stats.messages == 0 and time.monotonic() < deadline:
            processors[1].poll()
        assert processors[1].stats.timers_fired == 1  # the owner fires it
        assert client.zscore(keys.cart_timers_of(theirs, PARTITIONS), carter) is None
    finally:
        found = list(client.scan_iter(match=f"{namespace}:*"))
        if found:
            client.delete(*found)
        for bus in buses:
            bus.close()
