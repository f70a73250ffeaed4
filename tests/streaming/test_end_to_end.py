"""The real-time path over a real Redis: a generated session file replayed through the
collector's HTTP server; the processor's features in Feast must equal the batch definitions
for every user, and the sink's lake rows every accepted event once - also when the processor
is killed with SIGKILL mid-stream and restarted."""
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack

import pandas as pd
import pytest
import uvicorn

from recsys.benchmarks.stream_load import worker_env
from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.online.redis_keys import RedisKeys
from recsys.core.settings import Settings
from recsys.feature_repo.features.online import online_features
from recsys.feature_repo.features.session_features import session_features
from recsys.feature_repo.features.store import open_store
from recsys.streaming.collector import create_app
from recsys.streaming.lake_sink import SinkConfig
from recsys.streaming.partitions import Membership, partition_of
from recsys.streaming.processor import ProcessorConfig
from recsys.streaming.replay import replay
from recsys.streaming.runtime import build_bus, build_processor, build_sink
from recsys.tools.local_services import temporary_postgres_database
from tests.conftest import REPO, free_port
from tests.streaming.conftest import WRITE_KEY, keyed_access

pytestmark = pytest.mark.integration
LATENESS_MS = 5 * 60_000


PRODUCTION_REDIS_DB = 12  # Feast's Redis online store writes keys of its own: a db to flush


@pytest.fixture(params=["local", "production"])
def setup(request, tmp_path):
    """`local`: SQLite online store; `production`: Redis online store, PostgreSQL registry."""
    with ExitStack() as stack:
        extra = {}
        if request.param == "production":
            registry = stack.enter_context(temporary_postgres_database("feast_stream_test"))
            extra = {"feast_profile": "production", "feast_registry_url": registry,
                     "redis_url": f"redis://127.0.0.1:6379/{PRODUCTION_REDIS_DB}"}
        settings = Settings(state_dir=tmp_path / "state",
                            event_stream=f"test:{uuid.uuid4().hex[:8]}", **extra)
        yield from _running_collector(settings, tmp_path)
        if request.param == "production":
            build_bus(settings).client.flushdb()


def _running_collector(settings, tmp_path):
    config = ShopConfig(events=4000, seed=3, days=2,
                        dirt=DirtConfig(duplicates=0.03, unknown_event_type=0.01))
    source = tmp_path / "sessions.jsonl"
    write_shop(generate_shop(config), "jsonl", source, config)
    bus = build_bus(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(bus, keyed_access()), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield settings, source, f"http://127.0.0.1:{port}/events", bus
    server.should_exit = True
    thread.join(timeout=5)
    bus.reset()
    keys = list(bus.client.scan_iter(match=f"{settings.event_stream}:*"))
    if keys:
        bus.client.delete(*keys)


def expected_features(events: pd.DataFrame, watermark_ms: int) -> pd.DataFrame:
    """The batch definitions, as of each user's newest event (cart risk: or the watermark)."""
    rows = []
    watermark = pd.Timestamp(watermark_ms, unit="ms", tz="UTC")
    for _user, user_events in events.groupby("user_id"):
        last = user_events["timestamp"].max()
        row = session_features(user_events, last).iloc[0].to_dict()
        risk = session_features(user_events, max(last, watermark)).iloc[0]
        row["cart_abandonment_risk"] = bool(risk["cart_abandonment_risk"])
        rows.append(row)
    return pd.DataFrame(rows).set_index("user_id")


def check_against_batch(settings: Settings, watermark_ms) -> int:
    """`watermark_ms`: one for every user, or a function of the user (one per partition)."""
    lake_events = read_window(Lake(settings.lake), RAW_ZONE, RAW_EVENT_SCHEMA)
    assert lake_events["event_id"].is_unique
    if callable(watermark_ms):
        want = pd.concat([expected_features(events, watermark_ms(user))
                          for user, events in lake_events.groupby("user_id")])
    else:
        want = expected_features(lake_events, watermark_ms)
    store, _ = open_store(settings)
    got = online_features(store, list(want.index)).users.set_index("user_id")
    assert not got["session_missing"].any()
    for user, expected in want.iterrows():
        actual = got.loc[user]
        assert list(actual["user_session__recent_items"]) == list(expected["recent_items"]), user
        assert actual["user_session__top_category_30m"] == expected["top_category_30m"], user
        assert bool(actual["user_session__cart_abandonment_risk"]) == \
            expected["cart_abandonment_risk"], user
        assert bool(actual["user_session__comparing_products"]) == \
            bool(expected["comparing_products"]), user
        price = expected["avg_view_price_10m"]
        if pd.isna(price):
            assert pd.isna(actual["user_session__avg_view_price_10m"]), user
        else:
            assert actual["user_session__avg_view_price_10m"] == pytest.approx(price), user
    return len(lake_events)


def accepted_ids(source) -> int:
    frame = pd.read_json(source, lines=True)
    valid = frame[frame["event_type"].isin(["view", "add_to_cart", "remove_from_cart",
                                            "purchase", "rating"])]
    return valid["event_id"].nunique()


def test_replay_gives_the_batch_features_and_every_event_once_in_the_lake(setup):
    settings, source, url, bus = setup
    summary = replay(source, url, rate=20_000, batch_size=100, write_key=WRITE_KEY)
    assert summary.rejected > 0 and summary.duplicates > 0 and summary.refused_batches == 0
    assert summary.accepted == accepted_ids(source)
    # batches of 500: full batches, so the next one is read ahead while one is processed
    processor = build_processor(settings, ProcessorConfig(block_ms=100, batch_size=500,
                                                          lateness_ms=LATENESS_MS))
    processor.run(idle_exit_polls=2)
    assert processor.stats.polls >= 9
    sink = build_sink(settings, SinkConfig(block_ms=100, max_events=1000))
    sink.run(idle_exit_polls=2)
    assert processor.stats.messages == summary.accepted
    assert sink.stats.messages == summary.accepted and sink.stats.duplicates == 0
    assert len(bus.dead_letters(10_000)) == summary.rejected
    rows = check_against_batch(settings, processor.watermark())
    assert rows == summary.accepted
    # extract reads what the sink landed straight from the lake
    from recsys.components.extract.extract import ExtractConfig, extract

    report, events = extract(ExtractConfig(source="lake"), Lake(settings.lake))
    assert len(events) == summary.accepted and report.format == "lake"
    assert all("/hour=" in key for key in Lake(settings.lake).list(RAW_ZONE))
    # the Redis list the recommender reads holds the same recent items
    user = str(next(iter(pd.read_json(source, lines=True, dtype=False)["user_id"])))
    recent_key = f"{processor.keys.recent_items_prefix}{user}"
    recent = [i.decode() for i in bus.client.lrange(recent_key, 0, -1)]
    assert recent and recent == processor.state(user)["items"]


def test_a_killed_processor_loses_and_doubles_nothing(setup, tmp_path):
    settings, source, url, bus = setup
    env = worker_env(settings)
    summary = replay(source, url, rate=50_000, batch_size=100, write_key=WRITE_KEY)
    command = [sys.executable, "-m", "recsys.cli.main", "stream", "processor",
               "--consumer", "p1", "--idle-exit", "3", "--batch-size", "300"]
    group = f"{settings.event_stream}"
    first = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it once it has acknowledged some, not all
        groups = {g["name"].decode(): g for g in bus.client.xinfo_groups(group)} \
            if bus.client.exists(group) else {}
        entry = groups.get("session-features")
        if entry and entry["entries-read"] and entry["entries-read"] > 200:
            break
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert bus.lag("session-features") > 0, "the processor finished before it was killed"
    second = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert bus.lag("session-features") == 0
    sink = build_sink(settings, SinkConfig(block_ms=100, max_events=700))
    sink.run(idle_exit_polls=2)
    watermark = int(bus.client.get(f"{settings.event_stream}:session:watermark"))
    assert check_against_batch(settings, watermark) == summary.accepted


@pytest.fixture
def partitioned(tmp_path):
    """The production profile with the bus in 4 partitions."""
    with temporary_postgres_database("feast_stream_scale") as registry:
        settings = Settings(state_dir=tmp_path / "state", feast_profile="production",
                            feast_registry_url=registry, bus_partitions=4,
                            redis_url=f"redis://127.0.0.1:6379/{PRODUCTION_REDIS_DB}",
                            event_stream=f"test:{uuid.uuid4().hex[:8]}")
        yield from _running_collector(settings, tmp_path)
        build_bus(settings).client.flushdb()


def test_two_processors_and_two_sinks_one_killed_change_no_result(partitioned):
    """Scale-out: processors 0/2 and 1/2 run at once, 1/2 is killed mid-stream with SIGKILL
    and started again; two sinks land the lake. Features equal the batch definitions (each
    user's cart risk against its partition's watermark); lake rows = accepted events."""
    settings, source, url, bus = partitioned
    summary = replay(source, url, rate=50_000, batch_size=100, write_key=WRITE_KEY)
    assert summary.refused_batches == 0 and bus.length() == summary.accepted

    def processor(member: str) -> list[str]:
        return [sys.executable, "-m", "recsys.cli.main", "stream", "processor", "--member",
                member, "--consumer", f"p-{member[0]}", "--idle-exit", "3",
                "--batch-size", "200"]
    env = worker_env(settings)
    steady = subprocess.Popen(processor("0/2"), env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    doomed = subprocess.Popen(processor("1/2"), env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    second_half = build_bus(settings, Membership(1, 2))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and doomed.poll() is None:
        read = sum(int(g["entries-read"] or 0) for s in second_half.owned
                   for g in bus.client.xinfo_groups(s) if g["name"] == b"session-features") \
            if all(bus.client.exists(s) for s in second_half.owned) else 0
        if read > 200:
            break
        time.sleep(0.01)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert second_half.lag("session-features") > 0, "1/2 finished before it was killed"
    again = subprocess.run(processor("1/2"), env=env, cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    steady_output = steady.communicate(timeout=300)[0].decode()
    assert steady.returncode == 0, steady_output[-3000:]
    handled = [json.loads(again.stdout.strip().splitlines()[-1])["messages"],
               json.loads(steady_output.strip().splitlines()[-1])["messages"]]
    assert sum(handled) >= summary.accepted - 200 - 1 and min(handled) > 0
    assert build_bus(settings).lag("session-features") == 0
    for k in range(2):
        sink = build_sink(settings, SinkConfig(block_ms=100, max_events=700, consumer=f"s{k}"),
                          Membership(k, 2))
        sink.run(idle_exit_polls=2)
        assert 0 < sink.stats.written < summary.accepted
    keys = RedisKeys(settings.event_stream)

    def watermark(user: str) -> int:
        return int(bus.client.get(keys.watermark_of(partition_of(user, 4), 4)))
    assert check_against_batch(settings, watermark) == summary.accepted
