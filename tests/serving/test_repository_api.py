"""The model repository API turned on (`RECSYS_SERVING_REPOSITORY_API=1`): only an admin
token loads and unloads, on every gRPC service that carries the repository methods, and the
server stops reporting ready while the recsys model is unloaded."""
import grpc
import pytest
import requests
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc
from mlserver.grpc import model_repository_pb2 as repo_pb
from mlserver.grpc import model_repository_pb2_grpc as repo_grpc

from tests.factories import served_champion
from tests.serving.mlserver_process import running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ADMIN = "admin-token-for-tests"
SERVICE = "service-token-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("repository-api")
    processed, _ = served_champion(tmp / "state", events=3_000, seed=5)
    env = {"RECSYS_SERVING_REPOSITORY_API": "1", "RECSYS_SERVING_ADMIN_TOKEN": ADMIN,
           "RECSYS_SERVING_TOKEN": SERVICE}
    with running_server(tmp, tmp / "state", env) as running:
        yield running, str(processed.train["user_id"].iloc[0])


def bearer(token: str) -> tuple:
    return (("authorization", f"Bearer {token}"),)


def readiness(running) -> dict:
    with grpc.insecure_channel(running.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        server_ready = stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        try:
            model_ready = stub.ModelReady(pb.ModelReadyRequest(name="recsys"), timeout=10).ready
        except grpc.RpcError:  # MLServer answers a model it does not hold with an error
            model_ready = False
    return {"rest": requests.get(f"{running.url}/v2/health/ready", timeout=10).status_code,
            "rest_model": requests.get(f"{running.url}/v2/models/recsys/ready",
                                       timeout=10).status_code,
            "grpc": server_ready, "grpc_model": model_ready}


READY = {"rest": 200, "rest_model": 200, "grpc": True, "grpc_model": True}


def test_the_service_token_cannot_unload_through_either_grpc_service(server):
    running, user = server
    with grpc.insecure_channel(running.grpc) as channel:
        inference = pb_grpc.GRPCInferenceServiceStub(channel)
        repository = repo_grpc.ModelRepositoryServiceStub(channel)
        calls = [
            lambda md: inference.RepositoryModelUnload(
                pb.RepositoryModelUnloadRequest(model_name="recsys"), timeout=10, metadata=md),
            lambda md: inference.RepositoryModelLoad(
                pb.RepositoryModelLoadRequest(model_name="recsys"), timeout=10, metadata=md),
            lambda md: inference.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=10,
                                                 metadata=md),
            lambda md: repository.RepositoryModelUnload(
                repo_pb.RepositoryModelUnloadRequest(model_name="recsys"), timeout=10,
                metadata=md)]
        for call in calls:
            for metadata in (bearer(SERVICE), (), bearer("wrong")):
                with pytest.raises(grpc.RpcError) as refused:
                    call(metadata)
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert readiness(running) == READY
    answer = running.session().get(f"{running.url}/recommend/{user}?top_k=3", timeout=10)
    assert answer.status_code == 200 and len(answer.json()["item_ids"]) == 3


def test_an_admin_unload_turns_every_readiness_probe_not_ready_until_loaded_again(server):
    running, user = server
    http = running.session()
    with grpc.insecure_channel(running.grpc) as channel:
        inference = pb_grpc.GRPCInferenceServiceStub(channel)
        inference.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="recsys"),
                                        timeout=30, metadata=bearer(ADMIN))
        try:
            assert readiness(running) == {"rest": 400, "rest_model": 404, "grpc": False,
                                          "grpc_model": False}
            assert http.get(f"{running.url}/recommend/{user}", timeout=10).status_code == 404
        finally:
            inference.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="recsys"),
                                          timeout=120, metadata=bearer(ADMIN))
    assert readiness(running) == READY
    assert http.get(f"{running.url}/recommend/{user}?top_k=3", timeout=10).status_code == 200
