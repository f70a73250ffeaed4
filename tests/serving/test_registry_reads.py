"""Serving only reads the registry, and a registry that is out does not stop it."""
import asyncio
import os

import pytest
from mlserver.settings import ModelSettings

from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from recsys.core.settings import Settings
from recsys.experiments.definition import ExperimentDefinition, Variant
from recsys.experiments.store import TRACKING_EXPERIMENT, lock_name, open_store
from recsys.serving import runtime as runtime_module
from recsys.serving.build import _experiment_router
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from recsys.serving.registry_reads import (
    REGISTRY_HTTP_BOUNDS,
    bound_registry_calls,
)
from recsys.serving.runtime import RecsysRuntime


def test_registry_calls_are_bounded_unless_the_operator_set_them():
    environ = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    bound_registry_calls(environ)
    assert environ == {**REGISTRY_HTTP_BOUNDS, "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    assert int(REGISTRY_HTTP_BOUNDS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) <= 1


@pytest.mark.slow  # MLflow creates its SQLite schema
def test_serving_reads_no_experiment_without_creating_it_then_finds_it_when_it_appears(
        tmp_path, model_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    source = ModelSource(tracking, "recs", model_uri=model_path, model_version="1")
    source.load()
    settings = Settings(state_dir=tmp_path, mlflow_tracking_uri=tracking,
                        registered_model_name="recs")
    router = _experiment_router(settings, ServiceConfig(experiment_watch_seconds=3600), source)
    assert router.active is None and router.error is None
    assert client_for(tracking).get_experiment_by_name(TRACKING_EXPERIMENT) is None

    store = open_store(tracking, "recs")  # what the pipeline identity does
    store.start(ExperimentDefinition(name="later", variants=(
        Variant(label="control", target="popularity", weight=50),
        Variant(label="b", target="popularity", weight=50))),
        registry_lock(tracking, lock_name("recommend")), by="test")
    assert router.refresh() is True  # the watcher's next poll
    assert router.active.definition.name == "later" and router.error is None
    router.stop()


def test_unload_after_a_load_that_failed_part_way_does_not_raise(monkeypatch):
    seen = {}

    def registry_out(options):
        seen.update({name: os.environ.get(name) for name in REGISTRY_HTTP_BOUNDS})
        raise ConnectionError("registry unreachable")

    monkeypatch.setattr(os, "environ", {})  # restored after the test
    monkeypatch.setattr(runtime_module, "build_service", registry_out)
    runtime = RecsysRuntime(ModelSettings(name="recsys", implementation=RecsysRuntime))
    with pytest.raises(ConnectionError):
        asyncio.run(runtime.load())
    assert asyncio.run(runtime.unload()) is True
    assert seen == REGISTRY_HTTP_BOUNDS  # bounded before anything reached the registry
