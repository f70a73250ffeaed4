"""A hung cache Redis (its process stopped with SIGSTOP) behind a real serving process:
requests keep being answered, the breaker opens and says so in the metrics, and it closes
once Redis runs again."""
import os
import signal
import subprocess
import time

import pytest
import redis

from recsys.tools.local_services import freeze_process
from tests.conftest import free_port
from tests.factories import served_champion
from tests.metric_names import exported_metrics
from tests.serving.mlserver_process import running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def own_redis(tmp_path):
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield port, process
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def breaker_series(http, url) -> dict[str, float]:
    text = http.get(f"{url}/recsys/metrics", timeout=10).text
    assert "recsys_redis_breaker_open" in exported_metrics(text)
    values = {}
    for line in text.splitlines():
        if line.startswith(("recsys_redis_breaker_open{", "recsys_redis_breaker_opens_total{")) \
                and 'dependency="cache"' in line:
            name, value = line.rsplit(" ", 1)
            values[name.split("{")[0]] = float(value)
    return values


def test_a_stopped_cache_redis_is_skipped_and_found_again(own_redis, tmp_path):
    port, redis_process = own_redis
    processed, version = served_champion(tmp_path / "state", events=3_000, seed=6)
    users = [str(u) for u in processed.train["user_id"].unique()[:60]]
    env = {"RECSYS_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    options = {"cache_local_entries": 0, "redis_breaker_cool_down_seconds": 0.5}
    with running_server(tmp_path, tmp_path / "state", env, options) as running:
        http = running.session()

        def recommend(user: str) -> dict:
            answer = http.get(f"{running.url}/recommend/{user}?top_k=5", timeout=10)
            assert answer.status_code == 200, answer.text
            return answer.json()

        assert [len(recommend(u)["item_ids"]) for u in users[:5]] == [5] * 5
        assert breaker_series(http, running.url) == {
            "recsys_redis_breaker_opens_total": 0.0, "recsys_redis_breaker_open": 0.0}

        freeze_process(redis_process.pid)
        answers = [recommend(u) for u in users[5:40]]
        assert {a["model_version"] for a in answers} == {version}
        assert all(len(a["item_ids"]) == 5 and not a["cached"] for a in answers)
        stalled = breaker_series(http, running.url)
        assert stalled["recsys_redis_breaker_open"] == 1.0
        assert stalled["recsys_redis_breaker_opens_total"] >= 1.0

        os.kill(redis_process.pid, signal.SIGCONT)
        deadline = time.monotonic() + 30
        for user in users[40:] * 100:  # requests carry the breaker's trial once cooled down
            recommend(user)
            if breaker_series(http, running.url)["recsys_redis_breaker_open"] == 0.0:
                break
            assert time.monotonic() < deadline, "the breaker did not close"
            time.sleep(0.1)
        first = recommend(users[0])
        for _ in range(50):  # the list reaches Redis from the cache's writer thread
            again = recommend(users[0])
            if again["cached"]:
                break
            time.sleep(0.1)
        assert again["cached"] is True and again["item_ids"] == first["item_ids"]
