"""Serving's calls to the registry: reads only, each bounded in time.

Serving holds a read-only identity on MLflow (`recsys registry identities`). It never
creates the tracking experiment online experiments are kept in (MLflow's basic-auth app
gives the creator MANAGE on what it creates): the pipeline identity creates it. Until it
exists no experiment can run, and serving runs with none; the router's poll finds it once
it appears.

MLflow retries a failed HTTP call 7 times with exponential backoff and waits up to 120 s
for each reply: with the registry unreachable at start, a serving pod would sit unready
for minutes before the popularity fallback answered. Serving bounds its own calls
(`REGISTRY_HTTP_BOUNDS`, unless the environment already sets them): the fallback is up
within seconds, and the champion and experiment pollers retry every period anyway.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from recsys.experiments.definition import ExperimentDefinition

if TYPE_CHECKING:
    from recsys.experiments.store import ExperimentStore

REGISTRY_HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
"""One retry, a wait of at most 5 s per reply: a registry call fails within ~12 s."""


def bound_registry_calls(environ: MutableMapping[str, str] | None = None) -> None:
    """Bound MLflow's HTTP retries and timeout in this (serving) process (`environ`: the
    process environment), keeping any value the operator set."""
    environ = os.environ if environ is None else environ
    for name, value in REGISTRY_HTTP_BOUNDS.items():
        environ.setdefault(name, value)


class RunningExperiments:
    """The running experiment of a surface, read from the registry without writing to it:
    no tracking experiment yet means no experiment running."""

    def __init__(self, tracking_uri: str, registered_model: str,
                 surface: str = "recommend") -> None:
        self.tracking_uri = tracking_uri
        self.registered_model = registered_model
        self.surface = surface
        self._store: ExperimentStore | None = None

    def running(self) -> ExperimentDefinition | None:
        store = self._store or self._find_store()
        return None if store is None else store.running(self.surface)

    def _find_store(self) -> ExperimentStore | None:
        from recsys.core.lifecycle.tracking import client_for
        from recsys.experiments.store import TRACKING_EXPERIMENT, ExperimentStore

        client = client_for(self.tracking_uri)
        found = client.get_experiment_by_name(TRACKING_EXPERIMENT)
        if found is None:
            return None
        self._store = ExperimentStore(client, found.experiment_id, self.registered_model)
        return self._store
