"""Which variant answers a user: the running experiment, its assignment and its models.

The router reads the running experiment of the `recommend` surface from the registry
(`recsys.experiments.store`) at start and every `experiment_watch_seconds`, so a started,
ramped or stopped experiment takes effect within that period, without a restart. Every
variant's model is loaded (and smoke-tested) before the experiment is applied; a version
already loaded (the champion, or the same version in the previous definition) is shared,
not loaded twice. Each model's memory is logged and exported. If any variant cannot be
loaded, the experiment is not applied at all (everyone gets the champion, an error is
logged and `recsys_experiment_running` stays 0): serving part of a split would bias it.

Seldon Core v2's `Experiment` and KServe split traffic per request; a user would see both
variants within a session. Assignment here is per user, sticky and the same in every
replica (a hash, no shared state), which is what the analysis's per-user statistics need.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition
from recsys.serving.model_source import LoadedModel
from recsys.serving.polling import wait_next

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    experiment: str
    variant: str
    loaded: LoadedModel | None
    """The variant's model; None for a strategy (answered from the champion's data)."""
    strategy: str | None = None
    remote: bool = False
    """Served by another arm's server (this one is one arm of the experiment): the request
    is forwarded there (`ArmElsewhere`)."""

    @property
    def cache_version(self) -> str:
        if self.strategy:
            return f"strategy-{self.strategy}"
        if self.loaded is None:  # the service forwards such a user before any cache lookup
            raise ValueError(f"arm {self.variant!r} is served elsewhere: no cache version here")
        return self.loaded.version


class ArmElsewhere(Exception):
    """The user belongs to an arm another server serves: forward the request to it."""

    def __init__(self, arm: Arm) -> None:
        super().__init__(f"user of variant {arm.variant!r}, served by another arm")
        self.arm = arm


@dataclass(frozen=True)
class ActiveExperiment:
    definition: ExperimentDefinition
    assigner: Assigner
    arms: dict[str, Arm]
    model_bytes: dict[str, int]


class ExperimentRouter:
    def __init__(self, read_running: Callable[[], ExperimentDefinition | None],
                 load_version: Callable[[str], LoadedModel],
                 champion: Callable[[], LoadedModel], own_arm: str | None = None) -> None:
        self.read_running = read_running
        self.own_arm = own_arm
        """One arm's server: only this variant is loaded, the others are `remote`."""
        self.load_version = load_version
        self.champion = champion
        self._active: ActiveExperiment | None = None
        self._definition_json: str | None = None
        self.error: str | None = None
        """Why the running experiment is not applied (None when it is, or none runs)."""
        self._stop = threading.Event()

    @property
    def active(self) -> ActiveExperiment | None:
        return self._active

    def route(self, user_id: str) -> Arm | None:
        active = self._active
        if active is None or not active.definition.is_active():
            return None
        label = active.assigner.assign(user_id).variant
        return None if label is None else active.arms[label]

    def refresh(self) -> bool:
        """Apply the registry's running experiment; True when what is applied changed."""
        definition = self.read_running()
        text = definition.model_dump_json() if definition else None
        if text == self._definition_json and self.error is None:
            return False
        if definition is None:
            if self._active is not None:
                log.info("experiment %s ended: serving the champion to everyone",
                         self._active.definition.name)
            self._active, self._definition_json, self.error = None, None, None
            return True
        try:
            active = self._build(definition)
        except Exception as exc:
            self._active, self._definition_json = None, text
            self.error = f"experiment {definition.name!r} not applied: {exc}"
            log.error("%s - serving the champion to everyone", self.error)
            return True
        self._active, self._definition_json, self.error = active, text, None
        log.info("experiment %s applied: %s (coverage %.0f%%, model memory %s)",
                 definition.name, {v.label: f"{v.target}:{v.weight:g}"
                                   for v in definition.variants},
                 definition.coverage * 100,
                 {k: f"{v / 2**20:.1f} MiB" for k, v in active.model_bytes.items()})
        return True

    def _build(self, definition: ExperimentDefinition) -> ActiveExperiment:
        reusable = {self.champion().version: self.champion()}
        if self._active is not None:
            reusable.update({arm.loaded.version: arm.loaded
                             for arm in self._active.arms.values() if arm.loaded})
        arms, sizes = {}, {}
        if self.own_arm is not None and self.own_arm not in definition.labels:
            raise ValueError(f"this server is arm {self.own_arm!r}, which is not a variant "
                             f"of {definition.name!r} ({', '.join(definition.labels)})")
        for variant in definition.variants:
            if self.own_arm is not None and variant.label != self.own_arm:
                arms[variant.label] = Arm(definition.name, variant.label, None, remote=True)
                continue
            if variant.is_strategy:
                arms[variant.label] = Arm(definition.name, variant.label, None, variant.target)
                continue
            if variant.version is None:
                raise ValueError(f"variant {variant.label!r} (target {variant.target!r}) names "
                                 "no registry version")
            loaded = reusable.get(variant.version) or self.load_version(variant.version)
            reusable[loaded.version] = loaded
            arms[variant.label] = Arm(definition.name, variant.label, loaded)
            sizes[variant.label] = model_bytes(loaded.recommender)
        return ActiveExperiment(definition, Assigner(definition), arms, sizes)

    def watch(self, every_seconds: float) -> threading.Thread:
        def loop() -> None:
            while not wait_next(self._stop, every_seconds):
                try:
                    self.refresh()
                except Exception as exc:  # the registry is out: keep what is applied
                    log.warning("experiment check failed: %s", exc)

        thread = threading.Thread(target=loop, name="experiment-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop the watcher (`stop`); what is applied stays applied."""
        self.stop()


def model_bytes(model: object, depth: int = 2) -> int:
    """Memory held by a model's arrays and sparse matrices (what dominates its size)."""
    seen: set[int] = set()

    def size(value: object, level: int) -> int:
        if id(value) in seen:
            return 0
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            return int(value.nbytes)
        if hasattr(value, "indptr") and hasattr(value, "indices") and \
                hasattr(value, "data"):  # scipy sparse (compressed rows or columns)
            return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
        if level >= depth:
            return 0
        if isinstance(value, dict):
            return sum(size(v, level + 1) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(size(v, level + 1) for v in value[:1000])
        if hasattr(value, "__dict__"):
            return sum(size(v, level + 1) for v in vars(value).values())
        return 0

    return size(model, 0)
