"""What every endpoint shares: the guards, the upstream, auth, metrics and the audit log.

``ProxyService`` checks texts (recording metrics and audit lines for every verdict) and turns
verdicts into headers and the ``guardrail`` body field.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guardrail.engine import unchecked_reason
from guardrail.guard import Guard
from guardrail.policy import Policy, load_policy
from guardrail.taxonomy import TaxonomyMapping
from guardrail.types import Action, Role, Verdict

from .audit import AuditLog
from .auth import ANONYMOUS, Authenticator, Caller
from .body import read_body
from .errors import ProxyHTTPError
from .metrics import ProxyMetrics
from .settings import ProxySettings
from .upstream import Upstream, UpstreamReply

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["Checked", "ProxyService", "RequestContext", "build_guards"]

logger = logging.getLogger("guardrail.proxy")
# A benign text each classifier checks once at startup.
_WARM_UP_TEXT = "Hello! Could you recommend a good book about gardening?"


@dataclass(slots=True)
class RequestContext:
    """Per-request state: which guard and caller, an id for the audit log, time spent."""

    route: str
    guard: Guard
    caller: Caller = ANONYMOUS
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    classify_s: float = 0.0
    upstream_s: float = 0.0
    verdicts: list[Verdict] = field(default_factory=list)

    def server_timing(self) -> str:
        """A ``Server-Timing`` header value (milliseconds)."""
        return (
            f"classify;dur={self.classify_s * 1000:.3f}, upstream;dur={self.upstream_s * 1000:.3f}"
        )


@dataclass(frozen=True, slots=True)
class Checked:
    """Verdicts of one check, with the overall action."""

    verdicts: list[Verdict]

    @property
    def action(self) -> Action:
        """The most severe action."""
        return Action.most_severe(*(v.action for v in self.verdicts))

    @property
    def blocked(self) -> bool:
        """True when any verdict blocks."""
        return self.action is Action.BLOCK


class ProxyService:
    """Shared objects of one app, and the moderation step every endpoint uses."""

    def __init__(
        self,
        settings: ProxySettings,
        guards: Mapping[str, Guard],
        *,
        upstream: Upstream,
        metrics: ProxyMetrics,
        anthropic: Upstream | None = None,
        audit: AuditLog,
        mapping: TaxonomyMapping | None,
        openai_codes: Mapping[str, str],
        mapping_error: str | None = None,
    ) -> None:
        self.settings = settings
        self.guards = dict(guards)
        self.default_guard = self.guards[settings.policy]
        self.upstream = upstream
        # The Anthropic-compatible upstream of /v1/messages.
        self.anthropic = anthropic or upstream
        self.metrics = metrics
        self.audit = audit
        self.auth = Authenticator(settings)
        self.mapping = mapping
        self.openai_codes = dict(openai_codes)
        # OpenAI categories some local category maps to: the ones a text is scored for.
        self.scored_openai: frozenset[str] = frozenset()
        if mapping is not None:
            local = self.default_guard.policy.resolved_taxonomy.ids
            self.scored_openai = frozenset(mapping.forward(dict.fromkeys(local, 1.0)))
        self.mapping_error = mapping_error
        self.ready = False
        self.warm_state = "not loaded"
        self._warming: asyncio.Task[None] | None = None

    def guard_for(self, headers: Mapping[str, str], caller: Caller = ANONYMOUS) -> Guard:
        """The caller's guard: its key's policy (or the default), or an allowed one the
        policy header names (a named key: only the policies listed for it).

        Raises:
            ProxyHTTPError: 400 (403 for a named key) when the header names a policy that
                is not allowed.
        """
        name = headers.get(self.settings.policy_header)
        key = caller.key
        own = self.settings.policy if key is None or key.policy is None else key.policy
        if name is None or name == own:
            return self.guards[own]
        allowed = [own, *key.policies] if key is not None else list(self.default_allowed)
        if name not in allowed:
            whose = f"key {caller.name!r}" if key is not None else "this proxy"
            raise ProxyHTTPError(
                403 if key is not None else 400,
                f"Policy {name!r} (header {self.settings.policy_header}) is not allowed for "
                f"{whose}; allowed: {', '.join(sorted(allowed))}.",
                code="policy_not_allowed",
                param=self.settings.policy_header,
            )
        return self.guards[name]

    @property
    def default_allowed(self) -> list[str]:
        """Policies a caller without a named key may pick: the default and the allow-list
        (and guards passed to ``create_app`` by name)."""
        bound = {p for k in self.settings.keys for p in [k.policy, *k.policies]}
        listed = {self.settings.policy, *self.settings.policies}
        return [n for n in self.guards if n in listed or n not in bound]

    def check_model(self, ctx: RequestContext, model: str | None) -> None:
        """Refuse a model the caller's key may not call.

        Raises:
            ProxyHTTPError: 403 ``model_not_allowed``.
        """
        key = ctx.caller.key
        if key is None or key.models is None or model in key.models:
            return
        raise ProxyHTTPError(
            403,
            f"Model {model!r} is not allowed for key {ctx.caller.name!r}; allowed: "
            f"{', '.join(key.models) or 'none'}.",
            code="model_not_allowed",
            param="model",
        )

    async def check(
        self,
        ctx: RequestContext,
        texts: Sequence[str],
        role: Role,
        *,
        stage: str,
        prompts: Sequence[str | None] | None = None,
    ) -> Checked:
        """Check texts with the request's guard; record metrics and one audit line each."""
        if not texts:
            return Checked([])
        started = time.perf_counter()
        verdicts = await ctx.guard.acheck_many(list(texts), role, prompts)
        seconds = time.perf_counter() - started
        ctx.classify_s += seconds
        self.record(ctx, verdicts, texts, stage=stage, seconds=seconds)
        return Checked(verdicts)

    def limit_inputs(self, texts: Sequence[object], param: str) -> None:
        """Refuse a request with more texts, or more characters in all, than the settings allow
        (each text is classified on its own, so their number is what costs CPU).

        Raises:
            ProxyHTTPError: 400 ``too_many_inputs``; 413 ``request_too_large``.
        """
        settings = self.settings
        if len(texts) > settings.max_inputs:
            raise ProxyHTTPError(
                400,
                f"{param}: {len(texts)} inputs in one request; the limit is "
                f"{settings.max_inputs} (GUARDRAIL_MAX_INPUTS). Send them in several requests.",
                code="too_many_inputs",
                param=param,
            )
        chars = sum(len(t) for t in texts if isinstance(t, str))
        if chars > settings.max_input_chars:
            raise ProxyHTTPError(
                413,
                f"{param}: {chars} characters in one request; the limit is "
                f"{settings.max_input_chars} (GUARDRAIL_MAX_INPUT_CHARS). Send them in several "
                "requests.",
                code="request_too_large",
                param=param,
            )

    async def start(self, request: Request, route: str) -> tuple[RequestContext, bytes]:
        """Authenticate a request, pick its guard (policy header) and read its body.

        Raises:
            ProxyHTTPError: 401 (auth), 400 (disallowed policy), 413 (body too large), 408
                (body not received in time).
            ClientGone: the client disconnected mid-body.
        """
        caller = self.auth.check(request.headers)
        ctx = RequestContext(route, self.guard_for(request.headers, caller), caller)
        self.metrics.key_requests.labels(caller.name, route).inc()
        settings = self.settings
        body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
        return ctx, body

    async def post(
        self, ctx: RequestContext, path: str, headers: Mapping[str, str], body: bytes
    ) -> UpstreamReply:
        """POST ``body`` upstream; the time it takes is the request's upstream time."""
        reply = await self.upstream.request(
            "POST", path, route=ctx.route, headers=headers, content=body
        )
        ctx.upstream_s = reply.seconds
        return reply

    def record(
        self,
        ctx: RequestContext,
        verdicts: Sequence[Verdict],
        texts: Sequence[str],
        *,
        stage: str,
        seconds: float,
    ) -> None:
        """Metrics and audit lines for verdicts obtained elsewhere (e.g. while streaming)."""
        ctx.verdicts.extend(verdicts)
        self.metrics.record_verdicts(list(verdicts), seconds, key=ctx.caller.name)
        for verdict, text in zip(verdicts, texts, strict=True):
            self.audit.write(
                verdict,
                text,
                route=ctx.route,
                stage=stage,
                request_id=ctx.request_id,
                latency_ms=seconds * 1000,
                key=ctx.caller.name,
            )

    def headers(self, ctx: RequestContext) -> dict[str, str]:
        """``x-guardrail-*`` headers summarising every verdict of the request so far."""
        action = Action.most_severe(*(v.action for v in ctx.verdicts))
        return {
            "x-guardrail-action": action.value,
            "x-guardrail-categories": ",".join(fired_categories(ctx.verdicts)),
            "x-guardrail-policy": ctx.guard.policy.name,
            "x-guardrail-request-id": ctx.request_id,
            "server-timing": ctx.server_timing(),
        }

    def blocked_prompt(self, ctx: RequestContext, checked: Checked) -> ProxyHTTPError:
        """The 400 for a blocked prompt, with the verdict under ``guardrail``."""
        verdict = decisive(checked.verdicts)
        fired = ", ".join(fired_categories([verdict])) or "unsafe"
        message = f"The request was blocked by the guardrail policy {verdict.policy!r} ({fired})."
        reason = unchecked_reason(verdict)
        if reason is not None:
            # Not a judgement on the text: say that it could not be checked, and why.
            message = (
                f"The request could not be checked: {reason}. The guardrail policy "
                f"{verdict.policy!r} blocks what it cannot check (on_error: block)."
            )
        return ProxyHTTPError(
            400,
            message,
            code="content_filter",
            param="messages" if ctx.route.endswith("chat/completions") else None,
            extra={"guardrail": guardrail_field(checked.verdicts, "pre_call")},
            headers=self.headers(ctx),
        )

    def unredacted_prompt(self, ctx: RequestContext, checked: Checked) -> ProxyHTTPError:
        """The 400 for a prompt the policy redacts on a route that cannot redact (fail closed)."""
        verdict = decisive(checked.verdicts)
        kinds = ", ".join(sorted({e.type for e in verdict.entities})) or "personal data"
        return ProxyHTTPError(
            400,
            f"The guardrail policy {verdict.policy!r} redacts {kinds} in prompts, and "
            f"{ctx.route} cannot redact yet: the request was not forwarded.",
            code="content_filter",
            extra={"guardrail": guardrail_field(checked.verdicts, "pre_call")},
            headers=self.headers(ctx),
        )

    async def warm_up(self) -> None:
        """Load and warm every guard's classifier before the proxy says it is ready.

        Each classifier builds (off the event loop) and checks one benign text without the
        policy's timeout: a cold model may take longer than a request may wait, and the first
        request must not pay for it. Configuration errors (a missing extra, a model that
        cannot load) propagate, so startup fails; a warm-up check that fails leaves the proxy
        not ready (``/readyz`` says why and tries again).
        """
        self.warm_state = "warming up"
        seen: set[int] = set()
        for guard in self.guards.values():
            classifier = await asyncio.to_thread(lambda g=guard: g.classifier)  # type: ignore[misc]
            if id(classifier) in seen:
                continue
            seen.add(id(classifier))
            cold = Guard(guard.policy.replace(timeout_s=None), classifier=classifier)
            started = time.perf_counter()
            verdict = await asyncio.to_thread(cold.check_prompt, _WARM_UP_TEXT)
            reason = unchecked_reason(verdict)
            if reason is not None:
                self.warm_state = f"warm-up failed: {reason}"
                logger.warning(
                    "classifier of policy %r failed its warm-up: %s", guard.policy.name, reason
                )
                return
            logger.info(
                "classifier of policy %r warm in %.2f s",
                guard.policy.name,
                time.perf_counter() - started,
            )
        self.warm_state = "loaded"
        self.ready = True

    def retry_warm_up(self) -> None:
        """Start another warm-up in the background, unless one is running or it succeeded."""
        if self.ready or (self._warming is not None and not self._warming.done()):
            return
        self._warming = asyncio.get_running_loop().create_task(self._warm_up_quietly())

    async def _warm_up_quietly(self) -> None:
        try:
            await self.warm_up()
        except Exception as e:  # a retry's failure is reported by /readyz, not raised
            self.warm_state = f"warm-up failed: {type(e).__name__}"
            logger.warning("classifier warm-up failed: %s: %s", type(e).__name__, e)


def fired_categories(verdicts: Sequence[Verdict]) -> list[str]:
    """Categories that fired in any verdict, in first-seen order."""
    seen: dict[str, None] = {}
    for v in verdicts:
        for fired in v.categories:
            seen.setdefault(fired.category, None)
    return list(seen)


def decisive(verdicts: Sequence[Verdict]) -> Verdict:
    """The most severe verdict (the first of equals)."""
    return max(verdicts, key=lambda v: v.action.severity)


def guardrail_field(verdicts: Sequence[Verdict], stage: str) -> dict[str, Any]:
    """The ``guardrail`` object added to bodies: action, stage, categories, the verdict."""
    verdict = decisive(verdicts)
    return {
        "action": Action.most_severe(*(v.action for v in verdicts)).value,
        "stage": stage,
        "categories": fired_categories(verdicts),
        "policy": verdict.policy,
        "verdict": verdict.model_dump(mode="json"),
    }


def build_guards(
    settings: ProxySettings,
    *,
    guard: Guard | None = None,
    guards: Mapping[str, Guard] | None = None,
) -> dict[str, Guard]:
    """The default guard and the allow-listed ones, keyed by the names callers use.

    Policies loaded by name get the settings' ``on_error`` and ``classify_timeout_s``; guards
    passed in get them only when the settings set them explicitly. Guards whose policies name
    the same classifier with the same options share one classifier instance.

    Raises:
        ConfigError: a policy cannot be loaded.
    """
    given = dict(guards or {})
    if guard is not None:
        given[settings.policy] = guard
    out: dict[str, Guard] = {}
    shared: dict[str, Any] = {}
    for name in dict.fromkeys([*settings.all_policies(), *given]):
        if name in given:
            policy = _overridden(given[name].policy, settings, explicit_only=True)
            out[name] = given[name]
            if policy is not given[name].policy:
                out[name] = Guard(policy, classifier=given[name].classifier)
            continue
        policy = _overridden(load_policy(name), settings, explicit_only=False)
        key = policy.classifier.model_dump_json() + str(policy.resolved_taxonomy.ids)
        if key not in shared:
            shared[key] = Guard(policy)
            out[name] = shared[key]
        else:
            out[name] = Guard(policy, classifier=shared[key].classifier)
    return out


def _overridden(policy: Policy, settings: ProxySettings, *, explicit_only: bool) -> Policy:
    changes: dict[str, Any] = {}
    fields_set = settings.model_fields_set
    if settings.on_error is not None:
        changes["on_error"] = settings.on_error
    timeout = settings.classify_timeout_s
    if timeout is not None and (not explicit_only or "classify_timeout_s" in fields_set):
        changes["timeout_s"] = timeout
    return policy.replace(**changes) if changes else policy
