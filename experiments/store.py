"""Experiments kept with the registry: one MLflow run per experiment, auditable.

The run (MLflow experiment `recsys-online-experiments`, run name = the experiment's name)
holds the definition as a tag (what serving reads every `watch` period) and as the
`definition.json` artifact, the status (`running`, `stopped`, `concluded`) with who/when
tags, the looks of a sequential test, and later the analysis. Starting is refused when
another experiment runs on the same surface or the name was used before; start, stop and
ramp run under the registry lock of the surface, so two operators cannot both start one.
"""
from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime

from mlflow import MlflowClient

from recsys.core.errors import ConfigError, NotFoundError, RecsysError
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.registry_lock import RegistryLock
from recsys.experiments.definition import ExperimentDefinition, Variant

TRACKING_EXPERIMENT = "recsys-online-experiments"
TAG = "recsys.experiment."
RUNNING, STOPPED, CONCLUDED = "running", "stopped", "concluded"
MAX_DEFINITION_CHARS = 8000
"""MLflow's tag value limit: an exclusion list beyond it belongs in a smaller definition."""


class ExperimentConflict(RecsysError):
    status_code = 409


def lock_name(surface: str) -> str:
    return f"online-experiment-{surface}"


class ExperimentStore:
    def __init__(self, client: MlflowClient, tracking_experiment_id: str, registered_model: str):
        self.client = client
        self.experiment_id = tracking_experiment_id
        self.registered_model = registered_model

    # ---- reads ---------------------------------------------------------------------------
    def running(self, surface: str = "recommend") -> ExperimentDefinition | None:
        runs = self._runs(f"tags.`{TAG}status` = '{RUNNING}' and "
                          f"tags.`{TAG}surface` = '{surface}'")
        if len(runs) > 1:  # the lock prevents this; say so loudly rather than pick one
            raise ExperimentConflict(f"{len(runs)} experiments run on {surface!r}: "
                                     f"{[r.info.run_name for r in runs]}")
        return _definition(runs[0]) if runs else None

    def get(self, name: str) -> tuple[ExperimentDefinition, dict[str, str]]:
        run = self._run(name)
        return _definition(run), dict(run.data.tags)

    def run_id(self, name: str) -> str:
        return self._run(name).info.run_id

    def list(self) -> list[dict]:
        rows = []
        for run in self._runs(f"tags.`{TAG}name` != ''"):
            tags = run.data.tags
            definition = _definition(run)
            rows.append({"name": definition.name, "status": tags.get(f"{TAG}status"),
                         "surface": definition.surface,
                         "variants": {v.label: f"{v.target}"
                                      + (f" (v{v.version})" if v.version and not
                                         v.target.isdigit() else "") + f":{v.weight:g}"
                                      for v in definition.variants},
                         "coverage": definition.coverage,
                         "started_at": definition.starts_at.isoformat(timespec="seconds"),
                         "ended_at": definition.ends_at.isoformat(timespec="seconds")
                         if definition.ends_at else None,
                         "verdict": tags.get(f"{TAG}verdict")})
        return sorted(rows, key=lambda r: r["started_at"], reverse=True)

    # ---- writes --------------------------------------------------------------------------
    def start(self, definition: ExperimentDefinition, lock: RegistryLock, by: str
              ) -> ExperimentDefinition:
        """Pin every alias to its version, then record the experiment as running."""
        with lock:
            if self._runs(f"tags.`{TAG}name` = '{definition.name}'"):
                raise ExperimentConflict(f"an experiment named {definition.name!r} exists "
                                         "already (names are never reused: results stay "
                                         "auditable)")
            current = self.running(definition.surface)
            if current is not None:
                raise ExperimentConflict(f"experiment {current.name!r} is running on "
                                         f"{definition.surface!r}: stop it first")
            pinned = definition.model_copy(update={"variants": tuple(
                self._pinned(v) for v in definition.variants)})
            text = pinned.model_dump_json()
            if len(text) > MAX_DEFINITION_CHARS:
                raise ConfigError(f"the definition is {len(text)} characters; at most "
                                  f"{MAX_DEFINITION_CHARS} (shorten the exclusion list)")
            champion = aliases(self.client, self.registered_model).get("champion") or "none"
            run = self.client.create_run(self.experiment_id, run_name=definition.name, tags={
                f"{TAG}name": definition.name, f"{TAG}surface": definition.surface,
                f"{TAG}status": RUNNING, f"{TAG}definition": text,
                f"{TAG}started_by": by, f"{TAG}started_at": _now(),
                f"{TAG}champion_at_start": champion})
            self.client.log_dict(run.info.run_id, json.loads(text), "definition.json")
            for variant in pinned.variants:
                self.client.log_param(run.info.run_id, f"variant.{variant.label}",
                                      f"{variant.target}:{variant.version or '-'}:"
                                      f"{variant.weight:g}")
        return pinned

    def stop(self, name: str, lock: RegistryLock, by: str, reason: str,
             at: datetime | None = None) -> None:
        """Stop now (or `at`: a replay's or simulation's clock)."""
        with lock:
            run = self._run(name)
            if run.data.tags.get(f"{TAG}status") != RUNNING:
                raise ExperimentConflict(f"experiment {name!r} is not running "
                                         f"({run.data.tags.get(f'{TAG}status')})")
            definition = _definition(run).model_copy(update={"ends_at": at or datetime.now(UTC)})
            self._set(run.info.run_id, {"status": STOPPED, "definition":
                                        definition.model_dump_json(), "stopped_by": by,
                                        "stopped_at": _now(), "stop_reason": reason[:5000]})

    def ramp(self, name: str, coverage: float, lock: RegistryLock) -> ExperimentDefinition:
        """Raise the share of users in a running experiment (never lowered: users already
        in would leave their variant)."""
        with lock:
            run = self._run(name)
            definition = _definition(run)
            if run.data.tags.get(f"{TAG}status") != RUNNING:
                raise ExperimentConflict(f"experiment {name!r} is not running")
            if coverage < definition.coverage:
                raise ConfigError(f"coverage may only grow ({definition.coverage} -> "
                                  f"{coverage} would take users out of their variant)")
            ramped = ExperimentDefinition(**{**definition.model_dump(), "coverage": coverage})
            self._set(run.info.run_id, {"definition": ramped.model_dump_json()})
            self.client.log_metric(run.info.run_id, "coverage", coverage)
        return ramped

    def record_look(self, name: str, fraction: float) -> builtins.list[float]:
        run = self._run(name)
        looks = json.loads(run.data.tags.get(f"{TAG}looks", "[]"))
        if not looks or fraction > looks[-1]:
            looks.append(round(fraction, 6))
            self._set(run.info.run_id, {"looks": json.dumps(looks)})
        return looks

    def record_analysis(self, name: str, summary: dict, files: dict[str, str]) -> None:
        """The summary and report as artifacts of the experiment's run, the key figures as
        metrics (one step per analysis, so their history is the test's course)."""
        run_id = self._run(name).info.run_id
        for path in files.values():
            self.client.log_artifact(run_id, path, "analysis")
        step = len(self.client.get_metric_history(run_id, "analysis.users"))
        self.client.log_metric(run_id, "analysis.users", summary["data"]["users"], step=step)
        for label, values in summary["variants"].items():
            for metric in ("users", "ctr", "conversion", "revenue_per_user"):
                if values.get(metric) is not None:
                    self.client.log_metric(run_id, f"{label}.{metric}", values[metric],
                                           step=step)
        self._set(run_id, {"verdict": summary["verdict"]})

    def record_conclusion(self, name: str, summary: dict, promoted: str | None) -> None:
        run = self._run(name)
        self._set(run.info.run_id, {"status": CONCLUDED, "verdict": summary["verdict"],
                                    "winner": summary.get("winner") or "none",
                                    "promoted_version": promoted or "none",
                                    "concluded_at": _now()})

    # ---- internals -----------------------------------------------------------------------
    def _pinned(self, variant: Variant) -> Variant:
        if variant.is_strategy:
            return variant
        if variant.target.isdigit():
            self.client.get_model_version(self.registered_model, variant.target)  # exists?
            return variant.model_copy(update={"version": variant.target})
        version = aliases(self.client, self.registered_model).get(variant.target)
        if version is None:
            raise NotFoundError(f"{self.registered_model} has no alias {variant.target!r} "
                                f"(variant {variant.label!r})")
        return variant.model_copy(update={"version": version})

    def _set(self, run_id: str, values: dict[str, str]) -> None:
        for key, value in values.items():
            self.client.set_tag(run_id, f"{TAG}{key}", value)

    def _runs(self, filter_string: str):
        return self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                       max_results=1000)

    def _run(self, name: str):
        runs = self._runs(f"tags.`{TAG}name` = '{name}'")
        if not runs:
            raise NotFoundError(f"no experiment named {name!r}")
        return runs[0]


def _definition(run) -> ExperimentDefinition:
    return ExperimentDefinition.model_validate_json(run.data.tags[f"{TAG}definition"])


def open_store(tracking_uri: str, registered_model: str) -> ExperimentStore:
    from recsys.core.lifecycle.tracking import client_for, ensure_experiment

    return ExperimentStore(client_for(tracking_uri),
                           ensure_experiment(tracking_uri, TRACKING_EXPERIMENT),
                           registered_model)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
