"""The OpenAPI document of serving's plain REST routes (`/recommend/{user_id}`,
`/similar/{item_id}`, `/recsys/status`), generated from the code.

The routes are MLServer custom handlers on the runtime (`serving/runtime.py`), with no
FastAPI models. The document is FastAPI's own for those handlers, registered the way
MLServer registers them (parameters, types and defaults from their signatures), with the
answers described from the code that writes them: a list is `{"user_id" | "item_id": ...,
**Recommendation.as_dict()}` (`serving/answers.py`), an error MLServer's `{"error": ...}`.
`docs/openapi/serving.json` holds it (`make docs`; a test checks it is current), serving
answers it at `GET /recsys/openapi.json` (service token), and the schema fuzz test holds
the running server to it.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic.json_schema import JsonSchemaValue

from recsys.serving.answers import Recommendation

DOCUMENTED = ("/recommend/{user_id}", "/similar/{item_id}", "/recsys/status")
OPENAPI_PATH = "/recsys/openapi.json"


class ErrorAnswer(BaseModel):
    """A refused request: MLServer's error body."""

    model_config = ConfigDict(extra="forbid")
    error: str


class ExperimentStatus(BaseModel):
    name: str
    coverage: float
    variants: dict[str, dict[str, object]]
    model_bytes: dict[str, int]


class StatusAnswer(BaseModel):
    """`GET /recsys/status`: the model answering and, when it is a fallback, why."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    model_version: str
    model_uri: str | None
    fallback: bool
    fallback_reason: str | None
    experiment: ExperimentStatus | None
    experiment_error: str | None


def list_answer_schema(id_field: str) -> JsonSchemaValue:
    """The JSON schema of a REST list answer: the id asked about, then `as_dict()`."""
    schema = TypeAdapter(Recommendation).json_schema()
    always = Recommendation([], [], "v", False, "model").as_dict()
    names = [f.name for f in dataclasses.fields(Recommendation)]
    assert set(always) <= set(names), "as_dict writes a key the dataclass does not have"
    return {"title": f"{id_field.split('_')[0].title()}List", "type": "object",
            "properties": {id_field: {"type": "string"},
                           **{n: schema["properties"][n] for n in names}},
            "required": [id_field, *always], "additionalProperties": False}


# responses as FastAPI's add_api_route types them
def _json(schema: JsonSchemaValue | type[BaseModel], description: str) -> dict[str, Any]:
    if isinstance(schema, type):
        schema = {"$ref": f"#/components/schemas/{schema.__name__}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _refusals() -> dict[int | str, dict[str, Any]]:
    return {400: _json(ErrorAnswer, "Bad input, the field named (e.g. top_k outside 1..100)"),
            401: _json(ErrorAnswer, "No service token, or not one of serving's"),
            404: _json({"type": "object"}, "No such route (e.g. an id holding '/')")}


@functools.cache
def serving_document() -> dict[str, Any]:
    """The OpenAPI document (a dict, JSON-ready; typed as FastAPI's `get_openapi` types it)."""
    from fastapi import FastAPI
    from fastapi.openapi.utils import get_openapi
    from mlserver.handlers import get_custom_handlers
    from mlserver.settings import ModelSettings

    from recsys.serving.runtime import RecsysRuntime

    answers = {"/recommend/{user_id}": _json(list_answer_schema("user_id"),
                                             "The user's list (`path` says how it was made)"),
               "/similar/{item_id}": _json(list_answer_schema("item_id"),
                                           "Items like the item"),
               "/recsys/status": _json(StatusAnswer, "The model answering")}
    app = FastAPI()
    runtime = RecsysRuntime(ModelSettings(name="recsys", implementation=RecsysRuntime))
    for handler, method in get_custom_handlers(runtime):
        if handler.rest_path in DOCUMENTED:
            app.add_api_route(handler.rest_path, method, methods=[handler.rest_method],
                              responses={200: answers[handler.rest_path], **_refusals()},
                              description=(method.__doc__ or "").strip() or None)
    document = get_openapi(title="recsys serving: plain REST", version="1",
                           description="Recommendations over plain REST (the V2 / Open "
                                       "Inference protocol is MLServer's own). Every route "
                                       "needs a service token: Authorization: Bearer <token>.",
                           routes=app.routes)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (ErrorAnswer, StatusAnswer):
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    components["securitySchemes"] = {"serviceToken": {"type": "http", "scheme": "bearer"}}
    document["security"] = [{"serviceToken": []}]
    return document
