"""``create_app(settings) -> FastAPI``: the OpenAI-compatible guardrail proxy.

Point any OpenAI client at it (``base_url="http://127.0.0.1:8000/v1"``) and every call is
moderated: prompts before they are forwarded, responses before they are returned, streams as
they flow. See the README's "Proxy" section for the endpoints, settings and auth modes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from guardrail.errors import ConfigError
from guardrail.guard import Guard
from guardrail.taxonomy import TaxonomyMapping, load_mapping, load_taxonomy

from ._messages_text import MessagesRequest, anthropic_error_response
from ._openapi import install_openapi, request_body
from .audit import AuditLog
from .auth import Authenticator
from .body import ClientGone
from .chat import handle_chat, handle_completions
from .errors import ProxyHTTPError, error_body, error_response
from .messages import ROUTE as MESSAGES_ROUTE
from .messages import handle_messages
from .metrics import ProxyMetrics
from .routes import (
    KNOWN_ROUTES,
    handle_embeddings,
    handle_models,
    handle_moderations,
    handle_responses,
    unsupported_route,
)
from .schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ModerationRequest,
    ModerationResponse,
    ResponsesRequest,
)
from .scrub import Scrubber, ScrubResponses, install_log_filter
from .service import ProxyService, build_guards
from .settings import ProxySettings, load_settings
from .upstream import Upstream

__all__ = ["create_app"]

logger = logging.getLogger("guardrail.proxy")


def create_app(
    settings: ProxySettings | None = None,
    *,
    guard: Guard | None = None,
    guards: Mapping[str, Guard] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the proxy app.

    Args:
        settings: proxy settings; None reads them from the environment (``GUARDRAIL_*``) and
            the YAML file named by ``GUARDRAIL_CONFIG``, if any.
        guard: use this guard for the default policy instead of loading ``settings.policy``
            (tests, or sharing a loaded model).
        guards: guards for allow-listed policy names, keyed by the header value.
        transport: an httpx transport for the upstream client (tests).

    Returns:
        The FastAPI app. Its lifespan opens the upstream connection pool and the audit log,
        and builds the classifiers.

    Raises:
        ConfigError: invalid settings or a policy that cannot be loaded.
    """
    if settings is None:
        import os

        settings = load_settings(os.environ.get("GUARDRAIL_CONFIG"))
    secrets = [
        key.get_secret_value()
        for key in (settings.upstream_api_key, settings.anthropic_upstream_api_key)
        if key is not None
    ]
    scrubber = Scrubber(secrets)
    install_log_filter(secrets)
    service = _build_service(
        settings, guard=guard, guards=guards, transport=transport, scrubber=scrubber
    )
    app = FastAPI(
        title="guardrail proxy",
        summary="OpenAI-compatible proxy that moderates every prompt and response.",
        version=_version(),
        lifespan=_lifespan(service),
    )
    app.state.service = service
    _install_handlers(app)
    _install_model_routes(app, service)
    _install_other_routes(app, service)
    app.add_middleware(_KeyForDocs, auth=service.auth, paths=_closed_paths(settings))
    app.add_middleware(_CountRequests, metrics=service.metrics)
    # Outermost: nothing the app or the other middleware send escapes the scrubbing.
    app.add_middleware(ScrubResponses, scrubber=scrubber)
    install_openapi(app)
    return app


def _build_service(
    settings: ProxySettings,
    *,
    guard: Guard | None,
    guards: Mapping[str, Guard] | None,
    transport: httpx.AsyncBaseTransport | None,
    scrubber: Scrubber,
) -> ProxyService:
    metrics = ProxyMetrics()
    built = build_guards(settings, guard=guard, guards=guards)
    mapping, mapping_error = _openai_mapping(built[settings.policy])
    return ProxyService(
        settings,
        built,
        upstream=Upstream(settings, metrics=metrics, transport=transport),
        anthropic=Upstream(
            settings,
            metrics=metrics,
            transport=transport,
            base_url=settings.anthropic_upstream_url,
        ),
        metrics=metrics,
        audit=AuditLog(settings.audit_log, include_text=settings.audit_log_text, scrubber=scrubber),
        mapping=mapping,
        openai_codes={c.id: c.code for c in load_taxonomy("openai").categories},
        mapping_error=mapping_error,
    )


def _lifespan(service: ProxyService) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.audit.open()
        service.upstream.start()
        service.anthropic.start()
        try:
            await service.warm_up()
            yield
        finally:
            await service.upstream.aclose()
            await service.anthropic.aclose()
            service.audit.close()

    return lifespan


def _openai_mapping(guard: Guard) -> tuple[TaxonomyMapping | None, str | None]:
    taxonomy = guard.policy.resolved_taxonomy
    try:
        return load_mapping("mlcommons", "openai", source_taxonomy=taxonomy), None
    except ConfigError as e:
        logger.warning("/v1/moderations disabled: %s", e)
        return None, f"no total mapping from taxonomy {taxonomy.name!r} to OpenAI's ({e})"


def _install_handlers(app: FastAPI) -> None:
    def respond(request: Request, exc: ProxyHTTPError) -> Response:
        # Anthropic's clients read Anthropic's error shape; everyone else gets OpenAI's.
        if request.url.path == MESSAGES_ROUTE:
            return anthropic_error_response(exc)
        return error_response(exc)

    async def proxy_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProxyHTTPError)
        return respond(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith("/v1/") or exc.status_code == 405:
            return respond(request, unsupported_route(request.url.path, request.method))
        body = error_body(str(exc.detail), type_="invalid_request_error", code="not_found")
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        body = error_body(f"Invalid request: {loc}: {first.get('msg')}", param=loc or None)
        return JSONResponse(body, status_code=400)

    async def internal_error(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: answer in OpenAI's shape without any detail (nothing secret can
        # leak through a message), and let the server log the traceback.
        logger.error("internal error on %s %s: %s", request.method, request.url.path, type(exc))
        body = error_body("Internal error in the guardrail proxy.", type_="server_error")
        return JSONResponse(body, status_code=500)

    async def client_gone(request: Request, exc: Exception) -> Response:
        # Nobody is left to answer: no traceback, and 499 ("client closed request") in the
        # request metrics.
        logger.info("client disconnected mid-body on %s %s", request.method, request.url.path)
        return Response(status_code=499)

    app.add_exception_handler(ClientGone, client_gone)
    app.add_exception_handler(ProxyHTTPError, proxy_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)


def _install_model_routes(app: FastAPI, service: ProxyService) -> None:
    def post(
        path: str,
        model: type[Any],
        handler: Callable[[ProxyService, Request], Awaitable[Response]],
        summary: str,
        **extra: Any,
    ) -> None:
        async def endpoint(request: Request) -> Response:
            return await handler(service, request)

        endpoint.__name__ = path.strip("/").replace("/", "_")
        app.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            summary=summary,
            openapi_extra=request_body(model),
            **extra,
        )

    post("/v1/chat/completions", ChatCompletionRequest, handle_chat, "Chat completions")
    post("/v1/completions", CompletionRequest, handle_completions, "Text completions")
    post(
        "/v1/moderations",
        ModerationRequest,
        handle_moderations,
        "Moderations (local classifier)",
        responses={200: {"model": ModerationResponse}},
    )
    post("/v1/embeddings", EmbeddingRequest, handle_embeddings, "Embeddings (input moderated)")
    post("/v1/responses", ResponsesRequest, handle_responses, "Responses API")
    post(MESSAGES_ROUTE, MessagesRequest, handle_messages, "Anthropic Messages API")


def _install_other_routes(app: FastAPI, service: ProxyService) -> None:

    @app.get("/v1/models", summary="Models (from upstream)")
    async def models(request: Request) -> Response:
        return await handle_models(service, request, "/models")

    @app.get("/v1/models/{model_id:path}", summary="One model (from upstream)")
    async def model(request: Request, model_id: str) -> Response:
        return await handle_models(service, request, f"/models/{quote(model_id, safe='')}")

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: classifiers loaded and upstream reachable")
    async def readyz() -> Response:
        reachable = await service.upstream.ping()
        ok = service.ready and reachable
        if not service.ready:
            service.retry_warm_up()
        body = {
            "status": "ready" if ok else "not ready",
            "classifier": service.warm_state,
            "upstream": "reachable" if reachable else "unreachable",
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.api_route(
        "/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def unsupported(request: Request, path: str) -> Response:
        raise unsupported_route(request.url.path, request.method)


_DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


def _closed_paths(settings: ProxySettings) -> frozenset[str]:
    """Paths outside ``/v1`` that need a proxy key (when proxy keys are set)."""
    paths: set[str] = set()
    if not settings.public_docs:
        paths |= _DOCS_PATHS
    if not settings.public_metrics:
        paths.add("/metrics")
    return frozenset(paths)


class _KeyForDocs:
    """Pure ASGI middleware: the API documents and the metrics need a proxy key when proxy keys
    are configured (``public_docs`` / ``public_metrics`` open them). The ``/v1`` routes check
    keys themselves; ``/healthz`` and ``/readyz`` stay open for orchestrators."""

    def __init__(self, app: Any, *, auth: Authenticator, paths: frozenset[str]) -> None:
        self.app = app
        self.auth = auth
        self.paths = paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") in self.paths:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            try:
                self.auth.check(headers)
            except ProxyHTTPError as e:
                await error_response(e)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _CountRequests:
    """Pure ASGI middleware: counts answered requests by route and status."""

    def __init__(self, app: Any, *, metrics: ProxyMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in _ROUTES else "other"
        if path.startswith("/v1/models/"):
            route = "/v1/models"
        status = 500

        async def counting_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()


# Routes counted by name in the request metrics (anything else is "other").
_ROUTES = {*KNOWN_ROUTES, "/healthz", "/readyz", "/metrics"}


def _version() -> str:
    from guardrail import __version__

    return __version__
