"""The training pipeline with every step in the project image (kfp.local's DockerRunner on
podman), on the production profile, ends with the same champion and metrics as the
subprocess runner on the same data."""
import shutil

import pytest

from recsys.components.gate.report import latest_decision
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.tracking import client_for
from recsys.pipelines.local_runner import run_training_locally
from recsys.tools.container_run import run_in_containers
from tests.infra.test_images import images  # noqa: F401 - the fixture that runs `make image`

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("podman") is None,
                                 reason="podman is not installed (apt-get install podman runc "
                                        "debootstrap; see docs/deployment.md)")]
MODEL = "recs-in-containers"


def test_containers_and_subprocesses_promote_the_same_model_with_the_same_metrics(
        tmp_path, images):  # noqa: F811 - pytest fixture
    config = ShopConfig(events=20_000, seed=11)
    source = tmp_path / "shop.jsonl"
    write_shop(generate_shop(config), "jsonl", source, config)

    contained = run_in_containers(tmp_path / "containers", source, MODEL)

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_training_locally(tmp_path / "kfp", caching=False, source=str(source),
                         lake_uri=str(tmp_path / "lake"), tracking_uri=tracking,
                         registered_model=MODEL, state_dir=str(tmp_path / "state"))
    local = latest_decision(tracking, MODEL)

    assert contained["aliases"]["champion"] == "1" == aliases(client_for(tracking),
                                                              MODEL)["champion"]
    decision = contained["decision"]
    assert decision["promote"] is True and local["promote"] is True
    assert decision["candidate"] == local["candidate"]
    assert decision["candidate_value"] == pytest.approx(local["candidate_value"], abs=1e-9)
    quality = {k: v for k, v in local["candidate_metrics"].items() if "per_second" not in k}
    assert len(quality) >= 30  # every ranking metric, only the timing left out
    assert {k: decision["candidate_metrics"][k] for k in quality} == pytest.approx(
        quality, abs=1e-9)


def test_a_step_that_fails_in_its_container_fails_the_run(tmp_path, images):  # noqa: F811
    config = ShopConfig(events=3_000, seed=12)
    source = tmp_path / "shop.jsonl"
    write_shop(generate_shop(config), "jsonl", source, config)
    with pytest.raises(RuntimeError, match="train-op"):
        run_in_containers(tmp_path / "containers", source, MODEL,
                          models=["item_knn", "no_such_model"])
