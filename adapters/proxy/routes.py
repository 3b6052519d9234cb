"""The other endpoints: moderations (local), models (passed through), embeddings and the
Responses API (moderated), and a refusal for every unknown ``/v1`` route.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from guardrail.redaction import Vault, restore_payload
from guardrail.types import Action, Role, Verdict

from .body import parse_body
from .errors import ProxyHTTPError
from .fields import moderated_texts
from .forwarding import dumps, json_object, upstream_error
from .redact import redact_body
from .responses_stream import refusal_output, stream_responses
from .schemas import EmbeddingRequest, ModerationRequest, ResponsesRequest
from .service import ProxyService, RequestContext, guardrail_field
from .text import input_texts, responses_texts

__all__ = [
    "handle_embeddings",
    "handle_models",
    "handle_moderations",
    "handle_responses",
    "moderation_result",
    "unsupported_route",
]

KNOWN_ROUTES = {
    "/v1/chat/completions": "POST",
    "/v1/completions": "POST",
    "/v1/moderations": "POST",
    "/v1/embeddings": "POST",
    "/v1/responses": "POST",
    "/v1/messages": "POST",
    "/v1/models": "GET",
}


async def handle_moderations(service: ProxyService, request: Request) -> Response:
    """``POST /v1/moderations``: the local classifier, in OpenAI's response shape."""
    ctx, body = await service.start(request, "/v1/moderations")
    parsed = parse_body(body, ModerationRequest).model
    if service.mapping is None:
        raise ProxyHTTPError(
            400,
            f"/v1/moderations is unavailable with this policy: {service.mapping_error}",
            code="moderation_unavailable",
        )
    if isinstance(parsed.input, str):
        texts = [parsed.input]
    elif all(isinstance(item, str) for item in parsed.input):
        texts = [item for item in parsed.input if isinstance(item, str)]
    else:
        service.limit_inputs(parsed.input, "input")
        texts = [_parts_text(service, ctx, parsed.input)]
    service.limit_inputs(texts, "input")
    checked = await service.check(ctx, texts, Role.PROMPT, stage="moderation")
    payload = {
        "id": f"modr-{ctx.request_id}",
        "model": parsed.model or f"guardrail-{ctx.guard.policy.name}",
        "results": [moderation_result(service, v) for v in checked.verdicts],
    }
    return JSONResponse(payload, headers=service.headers(ctx))


def _parts_text(service: ProxyService, ctx: RequestContext, parts: list[Any]) -> str:
    texts: list[str] = []
    for i, part in enumerate(parts):
        if part.type != "text":
            # No multimodal classifier can be configured yet: an image is refused, never
            # passed as if it had been scored.
            raise ProxyHTTPError(
                400,
                f"input.{i}: {part.type} inputs cannot be moderated: this proxy has no "
                f"multimodal classifier configured (policy {ctx.guard.policy.name!r} uses "
                f"{ctx.guard.policy.classifier.name!r}, which reads text only); send text parts.",
                code="unsupported_content",
                param=f"input.{i}",
            )
        if part.text is None:
            raise ProxyHTTPError(400, f"input.{i}.text is required", param=f"input.{i}.text")
        texts.append(part.text)
    return "\n".join(texts)


def moderation_result(service: ProxyService, verdict: Verdict) -> dict[str, Any]:
    """One OpenAI moderation result: all 13 categories, keyed by their OpenAI names.

    A category's score is the max of the local categories mapped to it; it is flagged when
    one of those local categories fired (flag or block) in the verdict. Its applied input
    types are ``["text"]`` when some local category maps to it (the text was scored for it)
    and ``[]`` when none does (its score is 0 because nothing scored it).
    """
    mapping = service.mapping
    assert mapping is not None
    codes = service.openai_codes
    scores = mapping.forward(verdict.scores.categories)
    fired = mapping.forward({c.category: 1.0 for c in verdict.categories})
    return {
        "flagged": verdict.action is not Action.ALLOW,
        "categories": {code: cid in fired for cid, code in codes.items()},
        "category_scores": {code: float(scores.get(cid, 0.0)) for cid, code in codes.items()},
        "category_applied_input_types": {
            code: ["text"] if cid in service.scored_openai else [] for cid, code in codes.items()
        },
    }


async def handle_models(service: ProxyService, request: Request, path: str) -> Response:
    """``GET /v1/models`` (and ``/v1/models/{id}``), passed through from upstream; a key
    bound to some models sees only those."""
    caller = service.auth.check(request.headers)
    ctx = RequestContext("/v1/models", service.default_guard, caller)
    reply = await service.upstream.request(
        "GET",
        path,
        route=ctx.route,
        headers=service.auth.upstream_headers(request.headers),
        params=request.url.query,
    )
    if not reply.ok:
        return upstream_error(service, ctx, reply)
    models = caller.key.models if caller.key is not None else None
    if models is None:
        return Response(reply.content, media_type=reply.content_type, headers=reply.headers)
    payload = json_object(reply.content)
    if path != "/models":
        service.check_model(ctx, payload.get("id"))
    elif isinstance(payload.get("data"), list):
        payload["data"] = [
            m for m in payload["data"] if isinstance(m, dict) and m.get("id") in models
        ]
    return Response(dumps(payload), media_type="application/json", headers=reply.headers)


async def handle_embeddings(service: ProxyService, request: Request) -> Response:
    """``POST /v1/embeddings``: the input is checked, then forwarded."""
    ctx, raw = await service.start(request, "/v1/embeddings")
    parsed = parse_body(raw, EmbeddingRequest)
    service.check_model(ctx, parsed.model.model)
    texts = input_texts(parsed.model.input, "input")
    service.limit_inputs(texts, "input")
    rest = {k: v for k, v in parsed.data.items() if k != "input"}
    if others := moderated_texts("embeddings.request", rest):
        texts = [*texts, "\n\n".join(others)]
    checked = await service.check(ctx, texts, Role.PROMPT, stage="pre_call")
    if checked.blocked:
        raise service.blocked_prompt(ctx, checked)
    return await _pass(service, request, ctx, "/embeddings", parsed.body)


async def _pass(
    service: ProxyService, request: Request, ctx: RequestContext, path: str, body: bytes
) -> Response:
    reply = await service.post(ctx, path, service.auth.upstream_headers(request.headers), body)
    if not reply.ok:
        return upstream_error(service, ctx, reply)
    return Response(
        reply.content,
        media_type=reply.content_type,
        headers={**reply.headers, **service.headers(ctx)},
    )


async def handle_responses(service: ProxyService, request: Request) -> Response:
    """``POST /v1/responses``: input checked before, output after (streams as they flow)."""
    ctx, raw = await service.start(request, "/v1/responses")
    request_body = parse_body(raw, ResponsesRequest)
    parsed = request_body.model
    service.check_model(ctx, parsed.model)
    allow_media = service.settings.allow_media
    responses_texts(parsed.input, allow_media=allow_media)  # refuses unreadable media
    # Every string of the request but the listed ones (fields.py), in document order.
    prompt = "\n\n".join(moderated_texts("responses.request", request_body.data))
    checked = await service.check(ctx, [prompt], Role.PROMPT, stage="pre_call")
    if checked.blocked:
        raise service.blocked_prompt(ctx, checked)
    body, vault = await redact_body(ctx, request_body.body, checked, "responses.request")
    headers = service.auth.upstream_headers(request.headers)
    if parsed.stream:
        return await stream_responses(service, ctx, headers, body, prompt, vault)
    reply = await service.post(ctx, "/responses", headers, body)
    if not reply.ok:
        return upstream_error(service, ctx, reply)
    return await _check_responses_output(service, ctx, reply.content, reply.headers, prompt, vault)


async def _check_responses_output(
    service: ProxyService,
    ctx: RequestContext,
    content: bytes,
    upstream_headers: dict[str, str],
    prompt: str,
    vault: Vault | None = None,
) -> Response:
    payload = json_object(content)
    # Every string of the answer but the listed ones (fields.py): output text, reasoning
    # summaries, tool calls, fields not known yet.
    output = "\n".join(moderated_texts("responses.answer", payload))
    checked = await service.check(ctx, [output], Role.RESPONSE, stage="post_call", prompts=[prompt])
    headers = {**upstream_headers, **service.headers(ctx)}
    if not checked.blocked and vault:
        restored = restore_payload(payload, vault.restore)
        return Response(dumps(restored), media_type="application/json", headers=headers)
    if not checked.blocked:
        return Response(content, media_type="application/json", headers=headers)
    payload["output"] = refusal_output(ctx.guard.policy.refusal_message)
    payload["status"] = "incomplete"
    payload["incomplete_details"] = {"reason": "content_filter"}
    # Nothing else that was checked stays (output_text, unknown fields with text).
    for key in [
        k for k in payload if k != "output" and moderated_texts("responses.answer", {k: payload[k]})
    ]:
        payload.pop(key)
    payload["guardrail"] = guardrail_field(checked.verdicts, "post_call")
    return Response(dumps(payload), media_type="application/json", headers=headers)


def unsupported_route(path: str, method: str) -> ProxyHTTPError:
    """The 404 (or 405) for a ``/v1`` route the proxy does not moderate."""
    expected = KNOWN_ROUTES.get(path)
    if expected is not None:
        return ProxyHTTPError(
            405,
            f"{method} is not allowed on {path}; use {expected}.",
            code="method_not_allowed",
            headers={"allow": expected},
        )
    return ProxyHTTPError(
        404,
        f"{method} {path} is not supported by the guardrail proxy: only routes whose text it "
        f"can moderate are served ({', '.join(sorted(KNOWN_ROUTES))}).",
        code="unsupported_route",
    )
