"""``openai-guard``: a guard LLM served by an OpenAI-compatible server (vLLM, TGI, ...).

The same family adapters as ``hf-generative`` (templates, parsers, decision tokens), over HTTP.
Families whose prompt is a complete string (Llama Guard, WildGuard, ShieldGemma) use
``/v1/completions`` so the prompt reaches the model exactly; chat families (PolyGuard,
Qwen3Guard) use ``/v1/chat/completions`` and the server applies the model's chat template.
Scores come from the returned logprobs at the answer token; a server that returns none gives
the parsed answer's 0/1 (noted in the scores). Requests time out, are retried with exponential
backoff on connection errors, 429 and 5xx, and fail with a ``ClassifierError`` naming the URL.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field

from guardrail.classifiers.hub._families import Call
from guardrail.classifiers.hub._select import (
    FamilyOptions,
    Generation,
    build_family,
    category_translator,
    score_jobs,
)
from guardrail.errors import ClassifierError, ClassifierTimeout, ConfigError, install_hint
from guardrail.registry import register_classifier
from guardrail.taxonomy import Taxonomy
from guardrail.types import Sample, ScoreSet

__all__ = ["OpenAIGuardClassifier"]

_RETRY_STATUS = {429, 500, 502, 503, 504}


@register_classifier("openai-guard")
class OpenAIGuardClassifier:
    """A served guard LLM.

    Args:
        options: server, model name, family and HTTP behaviour.
        taxonomy: the policy's taxonomy.

    Raises:
        ConfigError: httpx is missing or the options do not fit the family.
    """

    name = "openai-guard"

    class Options(FamilyOptions):
        """Options of the ``openai-guard`` classifier."""

        base_url: str = Field(description="Server root including /v1, e.g. http://host:8000/v1.")
        model: str = Field(description="Model name as the server knows it.")
        endpoint: Literal["auto", "chat", "completions"] = Field(
            "auto", description="auto: completions for string prompts, chat for chat families."
        )
        api_key_env: str | None = Field(
            None, description="Environment variable holding the server's API key, if any."
        )
        timeout_s: float = Field(30.0, gt=0, description="Timeout per request.")
        max_retries: int = Field(2, ge=0, description="Retries after a failed request.")
        backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each time.")
        top_logprobs: int = Field(5, ge=1, le=20, description="Alternatives asked per token.")
        concurrency: int = Field(8, gt=0, description="Requests in flight at once.")
        add_special_tokens: bool = Field(
            True,
            description="Send vLLM's `add_special_tokens` with completions (string prompts "
            "carry their own begin-of-text token).",
        )

    def __init__(self, options: Options, *, taxonomy: Taxonomy) -> None:
        try:
            import httpx
        except ImportError as e:
            raise ConfigError(f"openai-guard needs httpx: {install_hint('proxy')}") from e
        self.options = options
        self.family = build_family(options, taxonomy)
        self._translate = category_translator(self.family, taxonomy)
        chat_family = self.family.chat
        if options.endpoint == "completions" and chat_family:
            raise ConfigError(
                f"openai-guard: {options.family} needs the chat endpoint (its chat template "
                "lives on the server)"
            )
        if options.endpoint == "chat" and not chat_family:
            raise ConfigError(
                f"openai-guard: {options.family} sends a complete prompt string; use the "
                "completions endpoint"
            )
        headers = {}
        if options.api_key_env:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise ConfigError(
                    f"openai-guard: environment variable {options.api_key_env} is empty"
                )
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            base_url=options.base_url.rstrip("/"), timeout=options.timeout_s, headers=headers
        )
        self.version = f"{options.model}@{options.base_url}"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score a batch; requests run ``concurrency`` at a time."""
        jobs = [(i, call) for i, s in enumerate(samples) for call in self.family.calls(s)]
        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            gens = list(pool.map(lambda job: self._request(job[1]), jobs))
        return score_jobs(
            self.family,
            samples,
            jobs,
            gens,
            self._translate,
            classifier=self.name,
            version=self.version,
            fallback_note="server returned no logprobs; score from the parsed answer",
        )

    def _payload(self, call: Call) -> tuple[str, dict[str, Any]]:
        opts = self.options
        common = {"model": opts.model, "max_tokens": call.max_new_tokens, "temperature": 0}
        if call.messages is not None:
            messages = [{"role": r, "content": c} for r, c in call.messages]
            body = {**common, "messages": messages, "logprobs": True}
            return "/chat/completions", {**body, "top_logprobs": opts.top_logprobs}
        body = {**common, "prompt": call.text, "logprobs": opts.top_logprobs}
        if opts.add_special_tokens:
            body["add_special_tokens"] = call.add_special_tokens
        return "/completions", body

    def _request(self, call: Call) -> Generation:
        import httpx

        path, body = self._payload(call)
        url = f"{self.options.base_url.rstrip('/')}{path}"
        delay = self.options.backoff_s
        for attempt in range(self.options.max_retries + 1):
            last = attempt == self.options.max_retries
            try:
                response = self._client.post(path, json=body)
            except httpx.TimeoutException as e:
                if last:
                    raise ClassifierTimeout(f"openai-guard: {url} timed out: {e}") from e
            except httpx.TransportError as e:
                if last:
                    raise ClassifierError(f"openai-guard: cannot reach {url}: {e}") from e
            else:
                if response.status_code < 400:
                    return _generation(response.json(), chat=call.messages is not None, url=url)
                if response.status_code not in _RETRY_STATUS or last:
                    raise ClassifierError(
                        f"openai-guard: {url} answered {response.status_code}: "
                        f"{response.text[:300]}"
                    )
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")


def _generation(data: Any, *, chat: bool, url: str) -> Generation:
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if chat else choice["text"]
    except (KeyError, IndexError, TypeError) as e:
        raise ClassifierError(f"openai-guard: unexpected response from {url}: {e!r}") from e
    if not isinstance(text, str):
        raise ClassifierError(f"openai-guard: {url} returned no answer text")
    steps = _chat_steps(choice) if chat else _completion_steps(choice)
    if not steps:
        return Generation(text=text, ends=[], alternatives=None)
    ends, pos = [], 0
    for token, _ in steps:
        pos += len(token)
        ends.append(pos)

    def alternatives(step: int) -> dict[str, float]:
        return {tok: math.exp(lp) for tok, lp in steps[step][1].items()}

    return Generation(text=text, ends=ends, alternatives=alternatives)


def _chat_steps(choice: Any) -> list[tuple[str, dict[str, float]]]:
    content = (choice.get("logprobs") or {}).get("content") or []
    steps = []
    for item in content:
        alts = {alt["token"]: float(alt["logprob"]) for alt in item.get("top_logprobs") or []}
        alts.setdefault(item["token"], float(item["logprob"]))
        steps.append((item["token"], alts))
    return steps


def _completion_steps(choice: Any) -> list[tuple[str, dict[str, float]]]:
    logprobs = choice.get("logprobs") or {}
    tokens = logprobs.get("tokens") or []
    token_lps = logprobs.get("token_logprobs") or [None] * len(tokens)
    tops = logprobs.get("top_logprobs") or [{}] * len(tokens)
    steps = []
    for token, lp, top in zip(tokens, token_lps, tops, strict=False):
        alts = {k: float(v) for k, v in (top or {}).items()}
        if lp is not None:
            alts.setdefault(token, float(lp))
        steps.append((token, alts))
    return steps
