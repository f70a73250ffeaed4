"""The serving entry point's process settings, read where MLServer would start."""
import os
import sys

from recsys.serving import server


def test_the_server_process_hands_the_gil_over_every_millisecond_and_answers_uncompressed(
        monkeypatch, tmp_path):
    seen = _settings_at_start(monkeypatch, tmp_path)
    assert seen == {"switch": server.SWITCH_INTERVAL_SECONDS, "gzip": "false",
                    "host": "127.0.0.1"}
    assert server.SWITCH_INTERVAL_SECONDS < sys.getswitchinterval()  # CPython's: 5 ms


def test_an_operator_can_turn_gzip_back_on(monkeypatch, tmp_path):
    seen = _settings_at_start(monkeypatch, tmp_path, MLSERVER_GZIP_ENABLED="true")
    assert seen["gzip"] == "true"


def _settings_at_start(monkeypatch, tmp_path, **extra) -> dict:
    """Run main() on a copy of the environment (restored after the test), MLServer's own
    start replaced by a probe of the process settings it would see."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")}
    env.update(RECSYS_STATE_DIR=str(tmp_path), RECSYS_SERVING_TOKEN="t" * 32, **extra)
    monkeypatch.setattr(os, "environ", env)
    seen = {}
    monkeypatch.setattr(server, "install", lambda *args, **kwargs: None)
    monkeypatch.setattr(server, "mlserver_main", lambda: seen.update(
        switch=sys.getswitchinterval(), gzip=os.environ["MLSERVER_GZIP_ENABLED"],
        host=os.environ["MLSERVER_HOST"]))
    before = sys.getswitchinterval()
    try:
        server.main()
    finally:
        sys.setswitchinterval(before)
    return seen
