"""An experiment's arms as servers of their own (Seldon Models behind a weighted Seldon
Experiment): two MLServer processes on loopback, each serving one arm's exported
artifact. Whichever arm a request reaches, the user is answered by the arm of their hashed
variant; a forwarded request is never forwarded again; an unreachable arm is a 503."""
import json
import os
import subprocess
import sys

import pytest
import requests

from recsys.core.models.zoo import build_model
from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition, Variant
from recsys.experiments.seldon import arm_model_names
from recsys.serving.artifact import SETTINGS_FILE, write_artifact
from recsys.tools.local_services import wait_for_http
from tests.conftest import free_port
from tests.factories import published_shop

pytestmark = pytest.mark.integration
DEFINITION = ExperimentDefinition(name="arms-1", variants=(
    Variant(label="a", target="champion", weight=50, version="1"),
    Variant(label="b", target="2", weight=50, version="2")))
NAMES = arm_model_names(DEFINITION)


def start_arm(tmp, label, model, champion, ports, urls, env):
    repo = tmp / f"repo-{label}"
    out = repo / NAMES[label]
    write_artifact(champion, str(out), NAMES[label], "1",
                   experiment=DEFINITION.model_dump_json(),
                   variant_models={"2": model} if label == "b" else {},
                   arm={"experiment_arm": label, "experiment_arm_models": NAMES,
                        "experiment_arm_urls": urls, "log_flush_seconds": 1})
    settings = json.loads((out / SETTINGS_FILE).read_text())
    assert settings["parameters"]["extra"]["experiment_arm"] == label
    (repo / "settings.json").write_text(json.dumps({"parallel_workers": 0, **ports}))
    log = open(tmp / f"arm-{label}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "recsys.serving.server", "start", str(repo)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc


@pytest.fixture(scope="module")
def arms(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("arms")
    state = tmp / "state"
    _, processed = published_shop(state, events=6_000, seed=5)
    champion = build_model("item_knn").fit(processed.train)
    challenger = build_model("ease").fit(processed.train)
    ports = {label: {"http_port": free_port(), "grpc_port": free_port(),
                     "metrics_port": free_port()} for label in ("a", "b")}
    urls = {label: f"http://127.0.0.1:{p['http_port']}" for label, p in ports.items()}
    env = {**os.environ, "RECSYS_STATE_DIR": str(state),
           "RECSYS_REDIS_URL": "redis://127.0.0.1:6379/10", "RECSYS_SERVING_TOKEN": "arm-token"}
    procs = {label: start_arm(tmp, label, challenger, champion, ports[label], urls, env)
             for label in ("a", "b")}
    try:
        for label, proc in procs.items():
            if not wait_for_http(f"{urls[label]}/v2/models/{NAMES[label]}/ready", 120, proc):
                pytest.fail(f"arm {label} not ready:\n"
                            + (tmp / f"arm-{label}.log").read_text()[-3000:])
        http = requests.Session()
        http.headers["Authorization"] = "Bearer arm-token"
        assigner = Assigner(DEFINITION)
        users = [str(u) for u in processed.train["user_id"].unique()[:60]]
        by_arm = {label: [u for u in users if assigner.assign(u).variant == label]
                  for label in ("a", "b")}
        assert by_arm["a"] and by_arm["b"]
        yield {"urls": urls, "http": http, "users": by_arm, "procs": procs, "tmp": tmp}
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(timeout=30)


def infer(arms, label, user, parameters=None):
    body = {"inputs": [{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": [user]},
                       {"name": "k", "datatype": "INT32", "shape": [1], "data": [5]}]}
    if parameters:
        body["parameters"] = parameters
    return arms["http"].post(f"{arms['urls'][label]}/v2/models/{NAMES[label]}/infer",
                             json=body, timeout=10)


def counter(arms, label, name, **labels) -> float:
    text = arms["http"].get(f"{arms['urls'][label]}/recsys/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    lines = [line for line in text.splitlines() if line.startswith(f"{name}{{")
             and all(f'{k}="{v}"' in line for k, v in labels.items())]
    assert len(lines) <= 1, (wanted, lines)
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_every_user_is_answered_by_the_arm_of_their_variant_whichever_arm_is_asked(arms):
    for asked in ("a", "b"):
        for label in ("a", "b"):
            for user in arms["users"][label][:5]:
                answer = infer(arms, asked, user)
                assert answer.status_code == 200, answer.text
                parameters = answer.json()["parameters"]
                assert parameters["experiment"] == "arms-1"
                assert parameters["variant"] == label
                assert parameters["model_version"] == ("2" if label == "b" else "1")
                assert answer.json()["model_name"] == NAMES[label]  # the arm that answered
    # the REST path is forwarded too, and answers in its own shape
    user = arms["users"]["b"][0]
    rest = arms["http"].get(f"{arms['urls']['a']}/recommend/{user}?top_k=4", timeout=10)
    assert rest.status_code == 200, rest.text
    body = rest.json()
    assert body["user_id"] == user and body["variant"] == "b" and len(body["item_ids"]) == 4
    assert len(body["recommendation_id"]) == 32
    forwarded_b = counter(arms, "a", "recsys_experiment_forwarded_total", variant="b",
                          outcome="ok")
    assert forwarded_b == min(5, len(arms["users"]["b"])) + 1
    # exposures are counted where the list was made: arm a never exposed a variant-b list
    assert counter(arms, "a", "recsys_experiment_exposures_total", variant="b") == 0
    assert counter(arms, "b", "recsys_experiment_exposures_total", variant="b") == \
        2 * min(5, len(arms["users"]["b"])) + 1


def test_a_forwarded_request_is_never_forwarded_again(arms):
    user = arms["users"]["b"][0]
    answer = infer(arms, "a", user, {"recsys_forwarded_from": "b"})
    assert answer.status_code == 500
    assert "disagree" in answer.text


def test_an_arm_that_cannot_be_reached_is_a_503_and_its_own_users_are_still_served(arms):
    arms["procs"]["b"].terminate()
    arms["procs"]["b"].wait(timeout=30)
    failed_before = counter(arms, "a", "recsys_experiment_forwarded_total", variant="b",
                            outcome="failed")
    answer = infer(arms, "a", arms["users"]["b"][0])
    assert answer.status_code == 503 and "unreachable" in answer.text
    assert counter(arms, "a", "recsys_experiment_forwarded_total", variant="b",
                   outcome="failed") == failed_before + 1
    own = infer(arms, "a", arms["users"]["a"][0])
    assert own.status_code == 200 and own.json()["parameters"]["variant"] == "a"
