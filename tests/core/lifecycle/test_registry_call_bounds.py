"""A pipeline step's MLflow calls are bounded (`registry_call_bounds`): a registry that stops
answering fails the call within the bounds, an operator's own values are kept, and the
environment is put back after the block."""
import os
import time

import pytest
from mlflow.exceptions import MlflowException

from recsys.core.lifecycle.tracking import (
    STEP_REGISTRY_BOUNDS,
    client_for,
    registry_call_bounds,
)
from tests.tcp_proxy import TcpProxy

NAMES = sorted(STEP_REGISTRY_BOUNDS)


def test_the_bounds_are_set_inside_the_block_only(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    with registry_call_bounds():
        assert {name: os.environ[name] for name in NAMES} == STEP_REGISTRY_BOUNDS
    assert [name for name in NAMES if name in os.environ] == []


def test_an_operators_value_is_kept(monkeypatch):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    with registry_call_bounds():
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_the_step_bound_is_minutes_not_mlflows_twenty():
    retries = int(STEP_REGISTRY_BOUNDS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    timeout = float(STEP_REGISTRY_BOUNDS["MLFLOW_HTTP_REQUEST_TIMEOUT"])
    backoff = float(STEP_REGISTRY_BOUNDS["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"])
    worst = (retries + 1) * timeout + sum(backoff * 2 ** n for n in range(retries))
    assert worst <= 6 * 60


@pytest.mark.integration
def test_a_frozen_registry_fails_a_bounded_call_in_time(mlflow_server_on_postgres,
                                                        monkeypatch):
    """MLflow reads the bounds at each call: small ones make a frozen registry's call fail
    within them (the step's own are the same mechanism, in minutes)."""
    url, _ = mlflow_server_on_postgres
    host, port = url.removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    try:
        client = client_for(proxy.url)
        client.search_experiments(max_results=1)  # answers through the proxy
        proxy.freeze()
        started = time.monotonic()
        with registry_call_bounds({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                                   "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
                                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}):
            with pytest.raises(MlflowException):
                client.search_experiments(max_results=1)
        assert time.monotonic() - started < 15
    finally:
        proxy.restore()
        proxy.close()
