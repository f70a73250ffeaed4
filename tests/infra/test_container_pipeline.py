"""The training pipeline with every step in the project image (kfp.local's DockerRunner on
podman), on the production profile, ends with the same champion and metrics as the
subprocess runner on the same data."""
import shutil

import pytest

from recsys.tools.container_run import run_in_containers
from tests.infra.shared_runs import (  # noqa: F401 - pytest fixtures
    MODEL,
    in_process_run,
    shop_source,
)
from tests.infra.test_images import images  # noqa: F401 - the fixture that runs `make image`

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("podman") is None,
                                 reason="podman is not installed (apt-get install podman runc "
                                        "debootstrap; see docs/deployment.md)")]


def test_containers_and_subprocesses_promote_the_same_model_with_the_same_metrics(
        tmp_path, images, shop_source, in_process_run):  # noqa: F811 - pytest fixture
    contained = run_in_containers(tmp_path / "containers", shop_source, MODEL)
    local = in_process_run["decision"]

    assert contained["aliases"]["champion"] == "1" == in_process_run["aliases"]["champion"]
    decision = contained["decision"]
    assert decision["promote"] is True and local["promote"] is True
    assert decision["candidate"] == local["candidate"]
    assert decision["candidate_value"] == pytest.approx(local["candidate_value"], abs=1e-9)
    quality = {k: v for k, v in local["candidate_metrics"].items() if "per_second" not in k}
    assert len(quality) >= 30  # every ranking metric, only the timing left out
    assert {k: decision["candidate_metrics"][k] for k in quality} == pytest.approx(
        quality, abs=1e-9)


def test_a_step_that_fails_in_its_container_fails_the_run(tmp_path, images):  # noqa: F811
    """The first step fails (a source in no format it reads): the run stops there, failed
    (kfp.local once took a container's exit code for 0 when the container was gone)."""
    source = tmp_path / "shop.bin"
    source.write_bytes(b"\x00\x01 not events \xff" * 64)
    with pytest.raises(RuntimeError, match="extract-op"):
        run_in_containers(tmp_path / "containers", source, MODEL)


def test_a_step_image_that_is_not_built_is_refused_by_name(tmp_path):
    """The runner asks podman for the step's image alone (listing every image raced with a
    build removing one: a 500 from the API failed a run)."""
    import docker

    from recsys.core.errors import ConfigError
    from recsys.pipelines.local_runner import run_and_read_exit_code
    from recsys.tools.local_services import podman_api

    with podman_api(str(tmp_path / "podman.sock")) as docker_host:
        client = docker.DockerClient(base_url=docker_host)
        with pytest.raises(ConfigError, match="localhost/no-such-image:0.0 is not built here"):
            run_and_read_exit_code(client, "localhost/no-such-image:0.0", ["true"], {})
        assert run_and_read_exit_code(client, "localhost/debian:bookworm",
                                      ["sh", "-c", "exit 3"], {}) == 3
