"""MLflow registry moves around the gate: aliases `challenger`, `champion`, `previous`.

Only this module touches aliases. Every move is recorded as version tags, so the
registry itself tells who was promoted, why, and by whom (gate, manual, rollback).

Reads fail loudly: "no such model" is the only empty answer; an unreachable or failing
registry raises RegistryUnavailable, so nothing is ever decided against a fabricated state.
Every alias move runs under the registry lock (`recsys.core.lifecycle.registry_lock`) and the gate's
promotion is compare-and-set: it moves `champion` only if the champion is still the version
the gate compared with, and otherwise records `gate.stale_comparison` and moves nothing.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from recsys.core.errors import NotFoundError, RecsysError, RegistryUnavailable
from recsys.core.lifecycle.gate import Decision
from recsys.core.lifecycle.pyfunc import MODEL_SHA_TAG
from recsys.core.lifecycle.registry_lock import RegistryLock

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
NO_CHAMPION = "none"
"""What `gate.compared_with_version` says when the gate compared with the baseline."""


def registered_model(client: MlflowClient, name: str):
    """The registered model, or None when it does not exist; any other failure raises
    RegistryUnavailable (never mistaken for "no model")."""
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise RegistryUnavailable(f"model registry unavailable reading {name!r}: {exc}") \
            from exc
    except Exception as exc:  # connection errors surface as many types
        raise RegistryUnavailable(f"model registry unavailable reading {name!r}: {exc}") \
            from exc


MONITORED_AT_TAG = "monitoring.checked_at"
"""Epoch seconds of the last monitoring run that judged this version."""
DRIFT_TAG = "monitoring.drift_detected"


def registry_health(client: MlflowClient, name: str, champion: str) -> dict:
    """What operators alert on, read from the registry: whether the last monitoring run found
    drift on the champion and when it ran (a daily monitoring that stopped leaves it old),
    and when the newest version was registered (every training run registers one, promoted
    or not: a retraining schedule that keeps failing leaves it old)."""
    tags = client.get_model_version(name, champion).tags or {}
    newest = client.search_model_versions(f"name = '{name}'", max_results=1,
                                          order_by=["creation_timestamp DESC"])
    drift = tags.get(DRIFT_TAG)
    monitored = tags.get(MONITORED_AT_TAG)
    return {"drift_detected": None if drift is None else drift == "True",
            "monitored_at": float(monitored) if monitored else None,
            "newest_version_registered_at":
                newest[0].creation_timestamp / 1000 if newest else None}


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """alias -> version of a registered model ({} only when the model does not exist)."""
    model = registered_model(client, name)
    if model is None:
        return {}
    return {alias: str(version) for alias, version in model.aliases.items()}


def create_version(client: MlflowClient, name: str, model_uri: str, run_id: str,
                   description: str | None = None) -> str:
    """A new version of `name` for the logged model at `model_uri`; returns its number."""
    # an MLflow 3 logged model ("models:/m-...") must name itself as model_id too
    model_id = model_uri.split("/", 1)[1] if model_uri.startswith("models:/m-") else None
    return str(client.create_model_version(name, source=model_uri, run_id=run_id,
                                           model_id=model_id, description=description).version)


def register_candidate(client: MlflowClient, name: str, model_uri: str, run_id: str) -> str:
    """Register a candidate as a new version with alias `challenger`; returns its version."""
    version = _new_version(client, name, model_uri, run_id)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


def _new_version(client: MlflowClient, name: str, model_uri: str, run_id: str) -> str:
    """A new version (no alias yet) carrying the run's model digest."""
    if registered_model(client, name) is None:
        client.create_registered_model(name)
    version = create_version(client, name, model_uri, run_id)
    # the digest of the model's files, checked by every loader (recsys.core.lifecycle.pyfunc)
    digest = client.get_run(run_id).data.tags.get(MODEL_SHA_TAG)
    if digest:
        client.set_model_version_tag(name, version, MODEL_SHA_TAG, digest)
    return str(version)


def register_with_decision(client: MlflowClient, name: str, model_uri: str, run_id: str,
                           decision: Decision, candidate: dict, reference: dict,
                           extra_tags: dict[str, str] | None = None,
                           compared_with: str = NO_CHAMPION,
                           lock: RegistryLock | None = None,
                           verify: VersionCheck | None = None) -> str:
    """Register the candidate as `challenger` and tag it with the decision (and `extra_tags`,
    e.g. the drift report that triggered the run), all or nothing.

    Every tag is written before `challenger` moves, so a failed write only deletes the new,
    unaliased version: no alias is put back, and another gate's `challenger` set meanwhile
    stays. `verify(version)` (the model loads, see
    `recsys.core.lifecycle.pyfunc.verify_version`) runs before the move: when it refuses, the
    version stays, unaliased, with the refusal recorded.
    The move itself runs under `lock` when given; if it fails, the new version is deleted
    (which drops any alias on it) and the old challenger is put back only if nobody else set
    one meanwhile."""
    version = _new_version(client, name, model_uri, run_id)
    try:
        record_decision(client, name, version, decision, candidate, reference, compared_with)
        for key, value in (extra_tags or {}).items():
            client.set_model_version_tag(name, version, key, str(value)[:5000])
        _verified(client, name, version, verify, "gate.decision")
    except RecsysError:
        raise
    except Exception:
        client.delete_model_version(name, version)
        raise
    with lock or nullcontext():
        old_challenger = aliases(client, name).get(CHALLENGER)
        try:
            client.set_registered_model_alias(name, CHALLENGER, version)
        except Exception:
            client.delete_model_version(name, version)
            if old_challenger is not None and CHALLENGER not in aliases(client, name):
                client.set_registered_model_alias(name, CHALLENGER, old_challenger)
            raise
    return version


VersionCheck = Callable[[str], None]
"""Raises a RecsysError when the version's model cannot be loaded."""
UNLOADABLE_TAG = "registry.unloadable"
"""Version tag: why an alias was not moved to the version (its model does not load)."""


def _verified(client: MlflowClient, name: str, version: str, verify: VersionCheck | None,
              decision_tag: str | None = None) -> None:
    """Run `verify`; on a refusal, record it on the version (and mark the decision refused)
    and raise it."""
    if verify is None:
        return
    try:
        verify(str(version))
    except RecsysError as exc:
        client.set_model_version_tag(name, str(version), UNLOADABLE_TAG, str(exc)[:5000])
        if decision_tag:
            client.set_model_version_tag(name, str(version), decision_tag, "refused")
        raise


class StaleComparison(RecsysError):
    """The champion moved after the gate compared with it: nothing was promoted."""

    status_code = 409


def promote(client: MlflowClient, name: str, version: str, reason: str, *,
            lock: RegistryLock, compared_with: str, verify: VersionCheck | None = None) -> None:
    """The gate's promotion: `version` becomes champion and the old champion `previous`,
    only if the champion is still `compared_with` (a version, or NO_CHAMPION); otherwise
    the version is tagged `gate.stale_comparison` and StaleComparison is raised. With
    `verify`, a version whose model does not load is refused first (recorded, raised)."""
    _verified(client, name, version, verify)
    with lock:
        _require_champion(client, name, version, compared_with, "gate.stale_comparison",
                          f"gate compared with {compared_with}, but the champion is now "
                          "{current}; not promoted (gate again against the new champion)")
        _make_champion(client, name, str(version), how="gate", reason=reason)


def _require_champion(client: MlflowClient, name: str, version: str, compared_with: str,
                      tag: str, why: str) -> None:
    """Compare-and-set under the caller's lock: the champion must still be `compared_with`;
    otherwise `why` (its `{current}` filled in) is tagged on `version` and raised."""
    current = aliases(client, name).get(CHAMPION) or NO_CHAMPION
    if current != str(compared_with):
        why = why.replace("{current}", current)
        client.set_model_version_tag(name, str(version), tag, why)
        raise StaleComparison(f"{name} v{version}: {why}")


def record_decision(client: MlflowClient, name: str, version: str, decision: Decision,
                    candidate: dict, reference: dict, compared_with: str) -> None:
    """Store the decision, both metric sets and the reasons as version tags."""
    tags = {
        "gate.decision": "approved" if decision.promote else "refused",
        "gate.against": decision.against,
        "gate.compared_with_version": compared_with,
        "gate.reasons": json.dumps(decision.reasons),
        "gate.candidate_metrics": json.dumps(candidate, sort_keys=True),
        "gate.reference_metrics": json.dumps(reference, sort_keys=True),
        "gate.decided_at": _now(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value[:5000])


def promote_experiment_winner(client: MlflowClient, name: str, version: str, reason: str, *,
                              lock: RegistryLock, compared_with: str,
                              evidence: dict[str, str]) -> None:
    """An online experiment's winner becomes champion: compare-and-set like the gate (the
    champion must still be `compared_with`, the one production served during the test),
    with the analysis recorded on the version (`evidence`, tag name -> value)."""
    with lock:
        _require_champion(client, name, version, compared_with, "experiment.stale_comparison",
                          f"the experiment ran against champion {compared_with}, but the "
                          "champion is now {current}; not promoted")
        for key, value in evidence.items():
            client.set_model_version_tag(name, str(version), key, str(value)[:5000])
        _make_champion(client, name, str(version), how="experiment", reason=reason)


def promote_manually(client: MlflowClient, name: str, version: str, reason: str, *,
                     lock: RegistryLock, verify: VersionCheck | None = None) -> None:
    """A manual override: `version` becomes champion, recorded as such (with `verify`, only
    if its model loads)."""
    client.get_model_version(name, version)  # raises when the version does not exist
    _verified(client, name, version, verify)
    with lock:
        _make_champion(client, name, str(version), how="manual", reason=reason)


def rollback(client: MlflowClient, name: str, reason: str, *, lock: RegistryLock,
             only_from: str | None = None) -> str:
    """champion <- previous (and previous <- the demoted champion); returns the new champion.
    With `only_from`, a compare-and-set under the lock: the champion must still be that
    version, or nothing moves and StaleComparison is raised (a promotion in between stays)."""
    with lock:
        current = aliases(client, name)
        if only_from is not None and current.get(CHAMPION) != str(only_from):
            raise StaleComparison(f"{name}: the champion is v{current.get(CHAMPION)}, not "
                                  f"v{only_from}: not rolled back")
        if PREVIOUS not in current:
            raise NotFoundError(f"model {name!r} has no '{PREVIOUS}' version to roll back to")
        target = current[PREVIOUS]
        _make_champion(client, name, target, how="rollback", reason=reason)
    return target


def _make_champion(client: MlflowClient, name: str, version: str, how: str, reason: str) -> None:
    """Move the aliases (the caller holds the registry lock); on a failed write restore
    exactly the aliases read here."""
    before = aliases(client, name)
    old = before.get(CHAMPION)
    if old == version:
        return
    try:
        if old is not None:
            client.set_registered_model_alias(name, PREVIOUS, old)
        client.set_registered_model_alias(name, CHAMPION, version)
    except Exception as exc:
        _restore_until_done(client, name, before, (CHAMPION, PREVIOUS), exc)
        raise
    if old is not None:
        client.set_model_version_tag(name, old, "registry.demoted_at", _now())
    client.set_model_version_tag(name, version, "registry.promoted_by", how)
    client.set_model_version_tag(name, version, "registry.promotion_reason", reason[:5000])
    client.set_model_version_tag(name, version, "registry.promoted_at", _now())


RESTORE_SECONDS = 120.0
"""How long a failed alias move keeps trying to put the aliases back (the lock is held, so
no other writer moves them meanwhile)."""


def _restore_until_done(client: MlflowClient, name: str, before: dict[str, str],
                        names: tuple[str, ...], cause: Exception) -> None:
    """Restore `names` to `before`, retrying with back-off while the registry is out (the
    move failed because it went away, so the first attempts usually fail too); after
    RESTORE_SECONDS, raise RegistryUnavailable naming the exact aliases to set by hand."""
    deadline = time.monotonic() + RESTORE_SECONDS
    pause = 0.5
    while True:
        try:
            _restore_aliases(client, name, before, names)
            log.warning("alias move of %s failed (%s); aliases restored to %s", name, cause,
                        {a: before.get(a) for a in names})
            return
        except Exception as exc:
            if time.monotonic() + pause > deadline:
                wanted = {a: before.get(a) for a in names}
                raise RegistryUnavailable(
                    f"alias move of {name!r} failed ({cause}) and the aliases could not be "
                    f"restored for {RESTORE_SECONDS:.0f}s ({exc}); set them by hand to "
                    f"{wanted} (None: delete the alias)") from exc
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


def _restore_aliases(client: MlflowClient, name: str, before: dict[str, str],
                     names: tuple[str, ...]) -> None:
    """Put back the aliases of `names` as they were in `before` (read under the lock):
    only those that now differ are written, so a registry that still refuses one kind of
    write does not stop the others from being restored."""
    now = aliases(client, name)
    for alias in names:
        if now.get(alias) == before.get(alias):
            continue
        if alias in before:
            client.set_registered_model_alias(name, alias, before[alias])
        else:
            try:
                client.delete_registered_model_alias(name, alias)
            except MlflowException:  # the alias was never set: nothing to undo
                continue


def registry_table(client: MlflowClient, name: str) -> list[dict]:
    """Versions newest first with their aliases, gate decision and key metrics."""
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases(client, name).items():
        by_version.setdefault(version, []).append(alias)
    rows = []
    for mv in client.search_model_versions(f"name='{name}'"):
        tags = mv.tags or {}
        metrics = json.loads(tags.get("gate.candidate_metrics", "{}"))
        rows.append({
            "version": str(mv.version), "aliases": sorted(by_version.get(str(mv.version), [])),
            "decision": tags.get("gate.decision", "-"),
            "promoted_by": tags.get("registry.promoted_by", "-"),
            "ndcg_at_10": metrics.get("ndcg_at_10"), "recall_at_20": metrics.get("recall_at_20"),
            "run_id": mv.run_id,
        })
    return sorted(rows, key=lambda r: int(r["version"]), reverse=True)


def decision_payload(decision: Decision, candidate: dict, reference: dict) -> dict:
    """The JSON artifact stored with a gate run."""
    return {**asdict(decision), "candidate_metrics": candidate, "reference_metrics": reference,
            "decided_at": _now()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
