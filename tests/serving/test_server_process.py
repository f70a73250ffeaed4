"""The serving entry point's process settings, read where MLServer would start."""
import os
import sys

from recsys.serving import server


def test_the_server_process_hands_the_gil_over_every_millisecond_and_answers_uncompressed(
        monkeypatch, tmp_path):
    seen = {}

    def fake_mlserver_main():
        seen["switch"] = sys.getswitchinterval()
        seen["gzip"] = server.os.environ["MLSERVER_GZIP_ENABLED"]
        seen["host"] = server.os.environ["MLSERVER_HOST"]

    _environment(monkeypatch, tmp_path)
    monkeypatch.setattr(server, "install", lambda access, max_bytes: None)
    monkeypatch.setattr(server, "mlserver_main", fake_mlserver_main)
    before = sys.getswitchinterval()
    try:
        server.main()
    finally:
        sys.setswitchinterval(before)
    assert seen == {"switch": server.SWITCH_INTERVAL_SECONDS, "gzip": "false",
                    "host": "127.0.0.1"}
    assert server.SWITCH_INTERVAL_SECONDS < before  # CPython's default is 5 ms


def test_an_operator_can_turn_gzip_back_on(monkeypatch, tmp_path):
    seen = {}
    _environment(monkeypatch, tmp_path, MLSERVER_GZIP_ENABLED="true")
    monkeypatch.setattr(server, "install", lambda access, max_bytes: None)
    monkeypatch.setattr(server, "mlserver_main",
                        lambda: seen.update(gzip=server.os.environ["MLSERVER_GZIP_ENABLED"]))
    before = sys.getswitchinterval()
    try:
        server.main()
    finally:
        sys.setswitchinterval(before)
    assert seen == {"gzip": "true"}


def _environment(monkeypatch, tmp_path, **extra):
    """A copy of the environment for main() to change, restored after the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")}
    env.update(RECSYS_STATE_DIR=str(tmp_path), RECSYS_SERVING_TOKEN="t" * 32, **extra)
    monkeypatch.setattr(os, "environ", env)
