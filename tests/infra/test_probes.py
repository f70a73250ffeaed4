"""The collector's probes: liveness asks whether the process answers, readiness whether the
bus takes events, so a Redis outage takes collectors out of the Service without the kubelet
restarting every one of them."""
from fastapi.testclient import TestClient

from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.collector import CollectorAccess, create_app
from recsys.tools.kustomize import render
from tests.conftest import REPO


class DownBus:
    """A bus whose Redis does not answer."""

    durability = None

    def ping(self) -> bool:
        return False


def collector_container() -> dict:
    resources = render(REPO / "infra" / "k8s" / "overlays" / "prod")
    collector = next(r for r in resources
                     if (r["kind"], r["metadata"]["name"]) == ("Deployment", "recsys-collector"))
    return collector["spec"]["template"]["spec"]["containers"][0]


def test_a_bus_outage_fails_readiness_but_not_liveness():
    container = collector_container()
    liveness = container["livenessProbe"]["httpGet"]["path"]
    readiness = container["readinessProbe"]["httpGet"]["path"]
    assert (liveness, readiness) == ("/live", "/health")
    client = TestClient(create_app(DownBus(), CollectorAccess(BearerKeys(["k"]))))
    assert client.get(liveness).status_code == 200
    answer = client.get(readiness)
    assert answer.status_code == 503 and answer.json()["bus"] == "down"
