"""The MLServer runtime, started as a real server on loopback against a real champion."""
import json
import os
import shutil
import subprocess
import sys

import grpc
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port
from tests.factories import served_champion

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving")
    state = tmp / "state"
    processed, version = served_champion(state, events=6_000, seed=3)

    repo = tmp / "models"
    shutil.copytree(REPO / "serving" / "model_repository", repo)
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    (repo / "settings.json").write_text(json.dumps({"parallel_workers": 0, **ports}))
    env = {**os.environ, "RECSYS_STATE_DIR": str(state), "RECSYS_REDIS_URL":
           "redis://127.0.0.1:6379/10"}
    proc = subprocess.Popen([sys.executable, "-m", "recsys.serving.server", "start", str(repo)],
                            env=env, stdout=open(tmp / "server.log", "w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports['http_port']}"
    try:
        if not wait_for_http(f"{url}/v2/models/recsys/ready", 120, proc):
            pytest.fail("mlserver not ready:\n" + (tmp / "server.log").read_text()[-3000:])
        users = processed.train["user_id"].unique()
        token = (state / "secrets" / "serving_token").read_text().strip()  # generated
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        sessions = processed.events.groupby("session_id")["item_id"].agg(list)
        long_session = next(items for items in sessions if len(set(items)) >= 3)
        yield {"url": url, "grpc": f"127.0.0.1:{ports['grpc_port']}", "version": version,
               "user": str(users[0]), "item": str(processed.train["item_id"].iloc[0]),
               "http": http, "token": token, "state": state,
               "session_items": list(dict.fromkeys(map(str, long_session)))[-3:]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def grpc_auth(server) -> tuple:
    return (("authorization", f"Bearer {server['token']}"),)


def v2(server, inputs):
    return server["http"].post(f"{server['url']}/v2/models/recsys/infer",
                         json={"inputs": inputs}, timeout=10)


def test_v2_rest_recommend_known_and_unknown(server):
    known = v2(server, [{"name": "user_id", "datatype": "BYTES", "shape": [1],
                         "data": [server["user"]]},
                        {"name": "k", "datatype": "INT32", "shape": [1], "data": [5]}])
    assert known.status_code == 200, known.text
    body = known.json()
    outputs = {o["name"]: o for o in body["outputs"]}
    assert len(outputs["item_ids"]["data"]) == 5 and len(outputs["scores"]["data"]) == 5
    assert body["parameters"]["model_version"] == server["version"]
    assert body["parameters"]["fallback"] is False
    assert body["parameters"].get("experiment") is None  # no experiment runs
    assert len(body["parameters"]["recommendation_id"]) == 32
    cold = v2(server, [{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["nobody"]}])
    assert cold.status_code == 200 and cold.json()["parameters"]["fallback"] is True


def test_an_anonymous_visitor_with_a_live_session_is_answered_from_it(server):
    from recsys.core.settings import Settings
    from recsys.feature_repo.features.online import push_session_features
    from recsys.feature_repo.features.store import open_store
    from tests.feature_repo.features.test_online import session_row

    store, _ = open_store(Settings(state_dir=server["state"],
                                   lake_uri=str(server["state"] / "lake")))
    recent = server["session_items"]
    push_session_features(store, session_row(user_id="anonymous:visitor-1",
                                             recent_items=recent, top_category_30m=None))
    http, url = server["http"], server["url"]
    answer = http.get(f"{url}/recommend/anonymous:visitor-1?top_k=5&explain=true", timeout=10)
    body = answer.json()
    assert body["path"] == "session" and body["fallback"] is False, body
    assert len(body["item_ids"]) == 5 and recent[-1] not in body["item_ids"]
    assert body["rules_applied"] == []  # no stock or promotion data in this lake
    # the champion's session model answered
    assert body["scorer"] == "session_model:sequential_rules"
    plain = http.get(f"{url}/recommend/anonymous:visitor-1?top_k=5", timeout=10).json()
    assert "rules_applied" not in plain and plain["item_ids"] == body["item_ids"]
    v2_answer = v2(server, [
        {"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["anonymous:visitor-1"]},
        {"name": "explain", "datatype": "BOOL", "shape": [1], "data": [True]}])
    assert v2_answer.status_code == 200, v2_answer.text
    assert json.loads(v2_answer.json()["parameters"]["rules_applied"]) == []
    assert v2_answer.json()["parameters"]["path"] == "session"
    assert v2_answer.json()["parameters"]["scorer"] == "session_model:sequential_rules"


def test_plain_rest_endpoints(server):
    http, url = server["http"], server["url"]
    recs = http.get(f"{url}/recommend/{server['user']}?top_k=3", timeout=10)
    assert recs.status_code == 200 and len(recs.json()["item_ids"]) == 3
    similar = http.get(f"{url}/similar/{server['item']}?top_k=4", timeout=10)
    assert similar.status_code == 200 and len(similar.json()["item_ids"]) == 4
    assert server["item"] not in similar.json()["item_ids"]
    status = http.get(f"{url}/recsys/status", timeout=10).json()
    assert status == {"model_version": server["version"], "fallback": False,
                      "fallback_reason": None, "experiment": None, "experiment_error": None,
                      "model_uri": f"models:/recsys-recommender/{server['version']}"}
    metrics = http.get(f"{url}/recsys/metrics", timeout=10).text
    assert "recsys_request_duration_seconds_bucket" in metrics and "recsys_cache_total" in metrics
    # the served version is a label of an info-style series, not a gauge's value
    assert f'recsys_model_info{{version="{server["version"]}"}} 1.0' in metrics
    assert "recsys_model_version" not in metrics and "recsys_request_seconds" not in metrics


@pytest.mark.parametrize("inputs,status,needle", [
    ([{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": [""]}], 400, "user_id"),
    ([{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["u"]},
      {"name": "k", "datatype": "INT32", "shape": [1], "data": [0]}], 400, "k must be from 1"),
    ([{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["u"]},
      {"name": "k", "datatype": "INT32", "shape": [1], "data": [1000]}], 400, "to 100"),
    ([{"name": "user_id", "datatype": "FP32", "shape": [1], "data": [1.0]}], 400,
     "must have datatype BYTES"),
    ([{"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["x"]}], 400,
     "allowed inputs"),
    ([], 400, "missing input 'user_id'"),
])
def test_v2_bad_input_is_a_4xx_naming_the_field(server, inputs, status, needle):
    response = v2(server, inputs)
    assert response.status_code == status, response.text
    assert needle in response.text


def test_answers_are_not_gzipped_for_a_client_that_accepts_gzip(server):
    answer = server["http"].get(f"{server['url']}/recommend/{server['user']}",
                                params={"top_k": 50}, headers={"Accept-Encoding": "gzip"},
                                timeout=10)
    assert answer.status_code == 200
    assert len(answer.content) > 500  # over MLServer's gzip threshold
    assert "Content-Encoding" not in answer.headers
    assert len(answer.json()["item_ids"]) > 0


def test_plain_rest_bad_input(server):
    http, url = server["http"], server["url"]
    assert http.get(f"{url}/recommend/u?top_k=0", timeout=5).status_code == 400
    assert http.get(f"{url}/recommend/u?top_k=abc", timeout=5).status_code == 422
    malformed = http.post(f"{url}/v2/models/recsys/infer", data="{not json",
                              headers={"Content-Type": "application/json"}, timeout=5)
    assert 400 <= malformed.status_code < 500
    metrics = http.get(f"{url}/recsys/metrics", timeout=10).text
    assert 'recsys_requests_total{endpoint="recommend",outcome="client_error"}' in metrics


def test_v2_grpc(server):
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

    with grpc.insecure_channel(server["grpc"]) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="recsys", inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="user_id", datatype="BYTES", shape=[1],
                contents=pb.InferTensorContents(bytes_contents=[server["user"].encode()]))])
        response = stub.ModelInfer(request, timeout=10, metadata=grpc_auth(server))
    names = [o.name for o in response.outputs]
    assert names == ["item_ids", "scores"]
    assert len(response.outputs[0].contents.bytes_contents) == 10


_ids = st.one_of(st.text(max_size=40), st.integers(), st.none(), st.floats(allow_nan=True),
                 st.lists(st.text(max_size=5), max_size=3))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["user_id", "k", "item_id", "exclude", "other"]),
       datatype=st.sampled_from(["BYTES", "INT32", "FP32", "BOOL", "nonsense"]),
       data=st.lists(_ids, max_size=4), shape=st.lists(st.integers(-2, 5), max_size=2),
       path_id=st.text(max_size=30), top_k=st.one_of(st.integers(-5, 500), st.text(max_size=4)))
def test_no_client_input_causes_a_5xx(server, name, datatype, data, shape, path_id, top_k):
    body = {"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}
    # json.dumps writes NaN / Infinity as bare tokens (not JSON): the server must refuse them
    response = server["http"].post(f"{server['url']}/v2/models/recsys/infer",
                                   data=json.dumps(body),
                                   headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code < 500, (body, response.text)
    safe = requests.utils.quote(path_id, safe="") or "x"
    for route in ("recommend", "similar"):
        plain = server["http"].get(f"{server['url']}/{route}/{safe}",
                                   params={"top_k": top_k}, timeout=10)
        assert plain.status_code < 500, (route, path_id, top_k, plain.text)


def test_an_oversized_body_is_a_413(server):
    big = {"inputs": [{"name": "exclude", "datatype": "BYTES", "shape": [60_000],
                       "data": ["item-id-0123"] * 60_000}]}
    response = server["http"].post(f"{server['url']}/v2/models/recsys/infer", json=big,
                                   timeout=10)
    assert response.status_code == 413
    assert "larger than the allowed 262144 bytes" in response.text


def test_a_long_exclude_list_is_refused_naming_the_limit(server):
    body = {"inputs": [{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["u"]},
                       {"name": "exclude", "datatype": "BYTES", "shape": [600],
                        "data": [f"i{n}" for n in range(600)]}]}
    response = v2(server, body["inputs"])
    assert response.status_code == 400 and "at most 500 items" in response.text


def test_every_route_but_health_needs_the_service_token(server):
    url = server["url"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": server["token"]}):
        for method, path in (("GET", f"/recommend/{server['user']}"), ("GET", "/similar/x"),
                             ("GET", "/recsys/metrics"), ("GET", "/recsys/status"),
                             ("POST", "/v2/models/recsys/infer"),
                             ("GET", "/v2/models/recsys"), ("GET", "/v2/docs")):
            answer = requests.request(method, url + path, headers=headers, json={}, timeout=10)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    for probe in ("/v2/health/live", "/v2/health/ready", "/v2/models/recsys/ready"):
        assert requests.get(url + probe, timeout=10).status_code == 200


def test_an_anonymous_unload_is_refused_and_the_model_stays_ready(server):
    url = server["url"]
    for http in (requests, server["http"]):  # the repository API is off: not even a token
        answer = http.post(f"{url}/v2/repository/models/recsys/unload", timeout=10)
        assert answer.status_code == 404 and "repository API is off" in answer.text
        assert http.post(f"{url}/v2/repository/index", json={}, timeout=10).status_code == 404
    assert requests.get(f"{url}/v2/models/recsys/ready", timeout=10).status_code == 200
    assert server["http"].get(f"{url}/recommend/{server['user']}", timeout=10).ok


def test_grpc_needs_the_token_and_refuses_oversized_messages(server):
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc import dataplane_pb2_grpc as pb_grpc
    from mlserver.grpc import model_repository_pb2 as repo_pb
    from mlserver.grpc import model_repository_pb2_grpc as repo_grpc

    def request(users: list[bytes]):
        return pb.ModelInferRequest(model_name="recsys", inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name="user_id", datatype="BYTES", shape=[len(users)],
                contents=pb.InferTensorContents(bytes_contents=users))])

    with grpc.insecure_channel(server["grpc"]) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(request([server["user"].encode()]), timeout=10,
                                metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready  # probes stay open
        with pytest.raises(grpc.RpcError) as too_big:  # 300 KB > the 256 KiB body limit
            stub.ModelInfer(request([b"x" * 1000] * 300), timeout=10,
                            metadata=grpc_auth(server))
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        repository = repo_grpc.ModelRepositoryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as unload:
            repository.RepositoryModelUnload(
                repo_pb.RepositoryModelUnloadRequest(model_name="recsys"), timeout=10,
                metadata=grpc_auth(server))
        assert unload.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert stub.ModelReady(pb.ModelReadyRequest(name="recsys"), timeout=10).ready


def test_the_inference_services_repository_methods_are_off_for_a_service_token(server):
    """MLServer 1.7 serves RepositoryIndex/Load/Unload on GRPCInferenceService too."""
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

    with grpc.insecure_channel(server["grpc"]) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for call, request in ((stub.RepositoryModelUnload,
                               pb.RepositoryModelUnloadRequest(model_name="recsys")),
                              (stub.RepositoryModelLoad,
                               pb.RepositoryModelLoadRequest(model_name="recsys")),
                              (stub.RepositoryIndex, pb.RepositoryIndexRequest())):
            with pytest.raises(grpc.RpcError) as refused:
                call(request, timeout=10, metadata=grpc_auth(server))
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert stub.ModelReady(pb.ModelReadyRequest(name="recsys"), timeout=10).ready
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
    answer = server["http"].get(f"{server['url']}/recommend/{server['user']}", timeout=10)
    assert answer.status_code == 200 and answer.json()["model_version"] == server["version"]


def test_every_serving_panel_names_metrics_serving_exports(server):
    from tests.metric_names import dashboard_metrics, exported_metrics

    scrape = server["http"].get(f"{server['url']}/recsys/metrics", timeout=10).text
    exported = exported_metrics(scrape)
    panels = dashboard_metrics(REPO / "infra" / "grafana" / "recsys-serving.json")
    assert len(panels) == 7
    for title, names in panels.items():
        assert names and names <= exported, (title, names - exported)


def test_every_business_panel_names_metrics_serving_or_the_collector_exports(server):
    """The business dashboard joins both: lists and items shown (serving), clicks, views and
    purchases (the collector); after real answers and real events, every series exists."""
    from recsys.core.online.bearer_keys import BearerKeys
    from recsys.streaming.redis_bus import RedisStreamBus
    from tests.metric_names import dashboard_metrics, exported_metrics
    from tests.streaming.conftest import collector_client, keyed_access, rich_event

    served = server["http"].get(f"{server['url']}/recommend/{server['user']}?top_k=5",
                                timeout=10)
    assert served.status_code == 200
    scrape = server["http"].get(f"{server['url']}/recsys/metrics", timeout=10).text
    exported = exported_metrics(scrape)
    assert 'recsys_items_served_total' in scrape and "recsys_catalogue_coverage" in scrape
    bus = RedisStreamBus(stream=f"test:{os.urandom(4).hex()}")
    try:
        access = keyed_access(metrics_keys=BearerKeys(["prometheus-token"]))
        collector = collector_client(bus, access=access)
        events = [rich_event(1), rich_event(2, event_type="click"),
                  rich_event(3, event_type="purchase")]
        assert collector.post("/events", json=events).status_code == 202
        text = collector.get("/metrics",
                             headers={"Authorization": "Bearer prometheus-token"}).text
        assert 'recsys_collector_valid_events_total{event_type="click"} 1.0' in text
        exported |= exported_metrics(text)
    finally:
        bus.dead_letter_bus().reset()
        bus.reset()
    panels = dashboard_metrics(REPO / "infra" / "grafana" / "recsys-business.json")
    assert len(panels) == 6
    for title, names in panels.items():
        assert names and names <= exported, (title, names - exported)
