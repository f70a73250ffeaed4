"""Serving's token rules, through the ASGI middleware MLServer's app is wrapped in."""
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from recsys.core.settings import Settings
from recsys.serving.auth import (
    ADMIN,
    DISABLED,
    METRICS,
    OPEN,
    SERVICE,
    TokenMiddleware,
    serving_access,
)


def app_behind(access) -> TestClient:
    async def reached(request):
        return PlainTextResponse("reached")

    app = Starlette(routes=[Route("/{path:path}", reached, methods=["GET", "POST"])])
    return TestClient(TokenMiddleware(app, access))


def test_with_the_repository_api_on_only_an_admin_token_unloads(tmp_path):
    access = serving_access(Settings(state_dir=tmp_path, serving_token="svc",
                                     serving_repository_api=True, serving_admin_token="adm"))
    client = app_behind(access)
    unload = "/v2/repository/models/recsys/unload"
    assert client.post(unload).status_code == 401
    assert client.post(unload, headers={"Authorization": "Bearer svc"}).status_code == 401
    assert client.post(unload, headers={"Authorization": "Bearer adm"}).text == "reached"
    # the admin may also call inference; the service token may not administer
    assert client.get("/recommend/u1", headers={"Authorization": "Bearer adm"}).text == \
        "reached"
    assert client.get("/recommend/u1", headers={"Authorization": "Bearer svc"}).text == \
        "reached"


def test_the_embedded_default_generates_private_tokens_once(tmp_path):
    access = serving_access(Settings(state_dir=tmp_path / "state"))
    path = tmp_path / "state" / "secrets" / "serving_token"
    assert access.service.path == path and oct(path.stat().st_mode & 0o777) == "0o600"
    token = path.read_text().strip()
    assert len(token) >= 40 and access.admin is None  # repository API off: no admin token
    again = serving_access(Settings(state_dir=tmp_path / "state"))
    assert again.service.matching(f"Bearer {token}") == token
    assert not (tmp_path / "state" / "secrets" / "serving_admin_token").exists()


@pytest.mark.parametrize("path,kind", [
    ("/v2/health/live", OPEN), ("/v2/health/ready", OPEN), ("/v2/models/recsys/ready", OPEN),
    ("/v2/models/recsys/versions/3/ready", OPEN), ("/v2/models/recsys/infer", SERVICE),
    ("/v2/models/ready/infer", SERVICE), ("/v2/health/ready/../../models/recsys/infer", SERVICE),
    ("/recommend/ready", SERVICE), ("/v2/repository/index", DISABLED),
    ("/v2/repository", DISABLED), ("/v2/repositoryx", SERVICE), ("/recsys/metrics", METRICS),
    ("/recsys/metrics/x", SERVICE)])
def test_route_kinds(tmp_path, path, kind):
    access = serving_access(Settings(state_dir=tmp_path, serving_token="svc"))
    assert access.route_kind(path) == kind
    on = serving_access(Settings(state_dir=tmp_path, serving_token="svc",
                                 serving_repository_api=True, serving_admin_token="a"))
    assert on.route_kind(path) == (ADMIN if kind == DISABLED else kind)


def test_the_metrics_token_scrapes_metrics_and_nothing_else(tmp_path):
    access = serving_access(Settings(state_dir=tmp_path, serving_token="svc",
                                     metrics_token="prom"))
    client = app_behind(access)
    prometheus = {"Authorization": "Bearer prom"}
    assert client.get("/recsys/metrics", headers=prometheus).text == "reached"
    assert client.get("/recsys/metrics", headers={"Authorization": "Bearer svc"}).text == \
        "reached"
    assert client.get("/recommend/u1", headers=prometheus).status_code == 401
    assert client.post("/v2/models/recsys/infer", headers=prometheus).status_code == 401
    assert client.get("/recsys/metrics").status_code == 401


@pytest.mark.parametrize("method,kind", [
    ("/inference.GRPCInferenceService/ServerReady", OPEN),
    ("/inference.GRPCInferenceService/ModelReady", OPEN),
    ("/inference.GRPCInferenceService/ModelInfer", SERVICE),
    ("/inference.GRPCInferenceService/ModelMetadata", SERVICE),
    # MLServer 1.7 serves the repository methods on the inference service too
    ("/inference.GRPCInferenceService/RepositoryIndex", DISABLED),
    ("/inference.GRPCInferenceService/RepositoryModelLoad", DISABLED),
    ("/inference.GRPCInferenceService/RepositoryModelUnload", DISABLED),
    ("/inference.model_repository.ModelRepositoryService/RepositoryModelUnload", DISABLED),
    ("/inference.model_repository.ModelRepositoryService/Anything", DISABLED),
    ("/another.Service/RepositoryModelUnload", DISABLED)])
def test_rpc_kinds(tmp_path, method, kind):
    access = serving_access(Settings(state_dir=tmp_path, serving_token="svc"))
    assert access.rpc_kind(method) == kind
    on = serving_access(Settings(state_dir=tmp_path, serving_token="svc",
                                 serving_repository_api=True, serving_admin_token="a"))
    assert on.rpc_kind(method) == (ADMIN if kind == DISABLED else kind)
    assert on.allows(on.rpc_kind(method), "Bearer svc") is (kind in (OPEN, SERVICE))


def test_the_server_is_ready_only_while_the_models_it_started_with_are_loaded():
    from types import SimpleNamespace as Model

    from recsys.serving.readiness import required_ready

    recsys = Model(name="recsys", ready=True)
    assert required_ready(frozenset({"recsys"}), [recsys])
    assert not required_ready(frozenset({"recsys"}), [])  # unloaded: MLServer says ready
    assert not required_ready(frozenset({"recsys"}), [Model(name="recsys", ready=False)])
    assert not required_ready(frozenset(), [Model(name="other", ready=False)])
    assert required_ready(frozenset(), [])  # started empty (Seldon's agent loads later)
