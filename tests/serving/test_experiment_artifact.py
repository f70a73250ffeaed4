"""An experiment exported as one artifact: the runtime's router assigns users exactly as
the registry-served one does, and refuses variant files that are not the exported ones."""
import json

import pandas as pd
import pytest

from recsys.core.models.zoo import build_model
from recsys.experiments.assignment import Assigner
from recsys.serving.artifact import SETTINGS_FILE, artifact_options, write_artifact
from recsys.serving.build import _experiment_router
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from tests.serving.conftest import ROWS
from tests.serving.test_experiment_router import USERS, definition


def export(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    champion = build_model("item_knn").fit(frame)
    challenger = build_model("ease").fit(frame)
    out = tmp_path / "ab-1"
    written = write_artifact(champion, str(out), "recsys", "1",
                             experiment=definition().model_dump_json(),
                             variant_models={"1": champion, "2": challenger})
    extra = json.loads((out / SETTINGS_FILE).read_text())["parameters"]["extra"]
    return out, written, challenger, artifact_options(extra, str(out / "model"))


def serve(options):
    config = ServiceConfig(**options)
    source = ModelSource("sqlite:///unused.db", "unused", model_uri=config.model_uri,
                         model_sha256=config.model_sha256, model_version=config.model_version)
    source.load()
    return _experiment_router(None, config, source), source


def test_users_get_their_hashed_variant_from_the_artifact(tmp_path):
    out, written, challenger, options = export(tmp_path)
    assert set(written["variants"]) == {"1", "2"}
    router, source = serve(options)
    assert router.error is None
    assigner = Assigner(definition())
    for user in USERS:
        arm = router.route(user)
        label = assigner.assign(user).variant
        assert arm.variant == label
        if label == "b":
            assert arm.loaded.version == "2"
            assert arm.loaded.recommender.recommend(["u1"], 3)["item_id"].tolist() == \
                challenger.recommend(["u1"], 3)["item_id"].tolist()
        elif label == "a":
            assert arm.loaded is source.current  # the champion is shared, not loaded twice
        else:
            assert arm.strategy == "popularity"


def test_a_variant_that_is_not_the_exported_one_keeps_the_experiment_off(tmp_path):
    out, _, _, options = export(tmp_path)
    arrays = out / "variants" / "2" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes() + b"\0")
    router, _ = serve(options)
    assert router.active is None and "SHA-256" in router.error
    assert all(router.route(user) is None for user in USERS)  # everyone gets the champion


def test_an_artifact_without_an_experiment_runs_no_router(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    out = tmp_path / "plain"
    write_artifact(build_model("item_knn").fit(frame), str(out), "recsys", "1")
    extra = json.loads((out / SETTINGS_FILE).read_text())["parameters"]["extra"]
    router, _ = serve(artifact_options(extra, str(out / "model")))
    assert router is None


def export_arm(tmp_path, label: str, version: str | None, model):
    from recsys.experiments.seldon import arm_model_names

    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    champion = build_model("item_knn").fit(frame)
    out = tmp_path / "arms" / label
    write_artifact(champion, str(out), f"recsys-ab-1-{label}", "1",
                   experiment=definition().model_dump_json(),
                   variant_models={version: model} if version else {},
                   arm={"experiment_arm": label,
                        "experiment_arm_models": arm_model_names(definition()),
                        "experiment_mesh_url": "http://seldon-mesh"})
    extra = json.loads((out / SETTINGS_FILE).read_text())["parameters"]["extra"]
    return artifact_options(extra, str(out / "model"))


def test_one_arm_serves_its_own_users_and_marks_the_others_remote(tmp_path):
    from recsys.core.online.catalogue import Catalogue
    from recsys.serving.experiment_router import ArmElsewhere
    from recsys.serving.service import RecommendationService

    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    challenger = build_model("ease").fit(frame)
    options = export_arm(tmp_path, "b", "2", challenger)
    assert options["experiment_arm"] == "b" and set(options["experiment_variants"]) == {"2"}
    router, source = serve(options)
    assert router.error is None
    assigner = Assigner(definition())
    labels = {user: assigner.assign(user).variant for user in USERS}
    assert {"control", "a", "b"} <= set(labels.values())
    for user, label in labels.items():
        arm = router.route(user)
        assert arm.variant == label
        assert arm.remote is (label != "b")
        if label == "b":
            assert arm.loaded.version == "2"
    # the service refuses to answer another arm's user from here: the runtime forwards it
    service = RecommendationService(ServiceConfig(**options), source, Catalogue(),
                                    experiments=router)
    other = next(user for user, label in labels.items() if label == "a")
    with pytest.raises(ArmElsewhere) as raised:
        service.recommend(service.parse(other))
    assert raised.value.arm.variant == "a"
    own = next(user for user, label in labels.items() if label == "b")
    assert service.recommend(service.parse(own)).variant == "b"


def test_an_arm_that_is_not_a_variant_keeps_the_experiment_off(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    options = export_arm(tmp_path, "b", "2", build_model("ease").fit(frame))
    router, _ = serve({**options, "experiment_arm": "z"})
    assert router.active is None and "arm 'z'" in router.error
