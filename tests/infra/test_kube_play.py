"""`make kube-play` (tools/kube_play.py): the dev overlay translated into what podman 4.3's
`kube play` runs, and, with podman and the images, run end to end: events land in the lake
once, the champion answers with a token, the metrics endpoints want the metrics token."""
import itertools
import shutil

import pytest

from recsys.tools.kube_translate import translate
from recsys.tools.kustomize import render
from tests.conftest import REPO

DEV = REPO / "infra" / "k8s" / "overlays" / "dev"
IMAGES = {"ghcr.io/recsys-mlops/recsys-serving:0.2.0": "localhost/recsys-serving:0.2.0",
          "docker.io/library/redis:7.0": "localhost/recsys-kube-play-redis:7.0"}


def translated():
    ports = itertools.count(41000)
    return translate(render(DEV), IMAGES, "/srv/model", "/srv/secrets", lambda: next(ports))


def pods_by_name(workloads):
    return {w["metadata"]["name"]: w for w in workloads}


def test_statefulsets_become_their_pods_with_the_controllers_labels_and_commands():
    translation = translated()
    pods = pods_by_name(translation.workloads)
    for ordinal in (0, 1):
        processor = pods[f"recsys-processor-{ordinal}"]
        assert processor["kind"] == "Pod"
        assert processor["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(ordinal)
        command = processor["spec"]["containers"][0]["command"]
        assert command[3:7] == ["--member", f"{ordinal}/2", "--consumer",
                                f"processor-{ordinal}"]
    bus = pods_by_name(translation.backends)
    assert bus["data-recsys-redis-bus-0"]["kind"] == "PersistentVolumeClaim"
    volumes = {v["name"]: v for v in bus["recsys-redis-bus-0"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "data-recsys-redis-bus-0"
    assert set(bus) == {"recsys-redis-bus-0", "data-recsys-redis-bus-0", "recsys-mlflow"}


def test_what_podman_43_gets_wrong_is_translated_and_the_rest_kept():
    translation = translated()
    everything = translation.backends + translation.workloads
    specs = [w["spec"]["template"]["spec"] if w["kind"] == "Deployment" else w["spec"]
             for w in everything if w["kind"] in ("Pod", "Deployment")]
    containers = [c for spec in specs for c in spec["containers"]]
    assert not [c for c in containers for p in ("readinessProbe", "livenessProbe")
                if "httpGet" in c.get(p, {})]
    collector = pods_by_name(everything)["recsys-collector"]["spec"]["template"]["spec"]
    assert collector["containers"][0]["readinessProbe"]["exec"]["command"] == [
        "python3", "-m", "recsys.cli.probe", "http://127.0.0.1:8090/health"]
    assert collector["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert collector["securityContext"]["runAsUser"] == 1000
    volumes = {v["name"]: v for v in collector["volumes"]}
    assert volumes["write-keys"] == {"name": "write-keys", "hostPath": {
        "path": "/srv/secrets/recsys-collector-write-keys", "type": "Directory"}}
    server = pods_by_name(everything)["recsys-mlserver-0"]["spec"]
    assert server["containers"][0]["image"] == "localhost/recsys-serving:0.2.0"
    assert {"name": "model", "mountPath": "/opt/recsys/model_repository/recsys",
            "readOnly": True} in server["containers"][0]["volumeMounts"]
    assert translation.secrets["recsys-collector-write-keys"] == {"keys"}
    assert translation.secrets["recsys-s3"] == {"access_key_id", "secret_access_key"}
    assert translation.service_targets == {
        "recsys-mlflow.recsys.svc": {"app.kubernetes.io/name": "mlflow"},
        "recsys-redis-bus.recsys.svc": {"app.kubernetes.io/name": "redis-bus"}}
    kinds = {line.split()[0] for line in translation.not_checked}
    assert {"NetworkPolicy", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service",
            "Role", "Model"} <= kinds
    assert all(port >= 41000 for port in translation.published.values())


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_make_kube_play_runs_the_dev_overlay_end_to_end():
    from recsys.tools.kube_play import podman, run

    events = 30
    report = run("dev", events=events)
    assert report["failures"] == [] and report["passed"] is True
    assert report["events"]["answers"] == [202, 202] and report["events"]["without_key"] == 401
    assert report["events"]["in_lake"] == events
    assert report["events"]["distinct_in_lake"] == events
    serving = report["serving"]
    assert (serving["with_token"], serving["without_token"]) == (200, 401)
    assert serving["items"] == 3 and serving["fallback"] is False
    assert serving["model_version"] == report["champion"]["version"]
    assert set(report["metrics"]) == {
        "recsys-collector", "recsys-mlserver-0", "recsys-quarantine-sink",
        "recsys-processor-0", "recsys-processor-1", "recsys-lake-sink-0", "recsys-lake-sink-1"}
    assert all(codes == {"with_token": 200, "without_token": 401}
               for codes in report["metrics"].values())
    assert report["mlflow"] == {"with_login": 200, "without_login": 401}
    assert len(report["pods"]) == 9 and set(report["pods"].values()) == {"ready"}
    left = podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
    assert not [name for name in left if name.startswith(("recsys-", "data-recsys"))]
