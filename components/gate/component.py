"""KFP wrappers of the gate and of the promotion it allows (never cached).

The gate returns a single bool so that `dsl.If(gate.output == True)` works on Kubeflow and
under kfp.local alike (kfp.local 2.17 cannot resolve NamedTuple fields in conditions); the
version and the reasons travel in the `outcome` artifact.
"""
from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def gate_op(evaluation: Input[Artifact], tracking_uri: str, registered_model: str,
            trigger: str, policy: dict, registry_lock_url: str = "", run_label: str = "",
            outcome: Output[Artifact] = None) -> bool:
    """Decide by `policy` (a `GatePolicy`'s fields), register the best candidate as
    `challenger` with the decision as tags (and `run_label`, which names the pipeline run, as
    `gate.run_label`)."""
    import json

    from recsys.components.gate.gate import run_gate
    from recsys.core.lifecycle.evaluation import EvaluationRecord
    from recsys.core.lifecycle.gate import GatePolicy
    from recsys.core.lifecycle.registry_lock import configured_lock
    from recsys.core.lifecycle.tracking import registry_call_bounds
    from recsys.core.progress import configure_logging
    from recsys.core.settings import load_settings

    configure_logging()
    with open(evaluation.path) as handle:
        record = EvaluationRecord.model_validate(json.load(handle))
    lock = configured_lock(tracking_uri, registered_model,
                           registry_lock_url or load_settings().registry_lock_url)
    with registry_call_bounds():
        result = run_gate(record, GatePolicy.model_validate(policy), tracking_uri,
                          registered_model, trigger, lock, run_label)
    with open(outcome.path, "w") as handle:
        json.dump(result.as_dict(), handle, indent=2)
    return result.decision.promote


@dsl.component(base_image=PROJECT_IMAGE)
def drift_trigger_op(summary: Input[Artifact]) -> str:
    """The trigger text (report URL, monitoring run) for a retraining started by drift."""
    import json

    from recsys.components.gate.trigger import drift_trigger

    with open(summary.path) as handle:
        return drift_trigger(json.load(handle))


@dsl.component(base_image=PROJECT_IMAGE)
def promote_op(outcome: Input[Artifact], tracking_uri: str, registered_model: str,
               registry_lock_url: str = "") -> bool:
    """Give the approved version the `champion` alias (the old champion becomes `previous`)
    if the champion is still the one the gate compared with; False when it moved meanwhile
    (recorded on the version as `gate.stale_comparison`; nothing is promoted)."""
    import json
    import logging

    from recsys.core.lifecycle.pyfunc import verify_version
    from recsys.core.lifecycle.registry import StaleComparison, promote
    from recsys.core.lifecycle.registry_lock import registry_lock
    from recsys.core.lifecycle.tracking import client_for, registry_call_bounds
    from recsys.core.progress import configure_logging
    from recsys.core.settings import load_settings

    configure_logging()
    with open(outcome.path) as handle:
        result = json.load(handle)
    # on a cluster the lock URL (it holds credentials) comes from a Secret's env, not a parameter
    lock = registry_lock(tracking_uri, registered_model,
                         registry_lock_url or load_settings().registry_lock_url)
    try:
        with registry_call_bounds():
            promote(client_for(tracking_uri), registered_model, result["version"],
                    "; ".join(result["decision"]["reasons"]), lock=lock,
                    compared_with=result["compared_with"],
                    verify=lambda version: verify_version(registered_model, version))
    except StaleComparison as exc:
        logging.getLogger("recsys").warning("promote: %s", exc)
        return False
    return True
