"""The OpenAPI document: request bodies from the schema models, errors in OpenAI's shape.

Handlers read their bodies themselves (for the size limit and OpenAI-shaped 400s), so FastAPI
cannot infer the request bodies; they are declared here from the same pydantic models.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

__all__ = ["install_openapi", "request_body"]

_REF = "#/components/schemas/{model}"
_models: list[type[BaseModel]] = []


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """An error in OpenAI's shape; blocked prompts add the verdict under ``guardrail``."""

    error: ErrorDetail
    guardrail: dict[str, Any] | None = Field(None, description="The verdict of a block.")


_ERRORS = {
    "400": "Bad request: malformed JSON, wrong schema, or a prompt blocked (content_filter)",
    "401": "Missing or wrong proxy API key",
    "413": "Request body over the size limit",
    "502": "Upstream unreachable",
    "504": "Upstream timed out",
}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body of ``model`` and the error responses."""
    if model not in _models:
        _models.append(model)
    ref = {"$ref": _REF.format(model=model.__name__)}
    error = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
        "responses": {code: {"description": d, "content": error} for code, d in _ERRORS.items()},
    }


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the request and error models as components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        models: list[type[BaseModel]] = [*_models, ErrorResponse]
        pairs: list[tuple[type[BaseModel], Literal["validation"]]] = [
            (m, "validation") for m in models
        ]
        _, defs = models_json_schema(pairs, ref_template=_REF)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.get("$defs", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents this override
