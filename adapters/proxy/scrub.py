"""Keeping the upstream key out of every byte that leaves the proxy.

An upstream may echo the key it was sent: in an error message, a response header
(``x-request-id``, ``openai-*``), a mid-stream SSE ``error`` event, or model text that then
reaches the audit log. Rather than scrub each place that could carry it, the proxy scrubs the
channels themselves:

- responses: ``ScrubResponses``, a pure ASGI middleware, rewrites every header value and every
  body message before it is sent (a whole body gets its ``content-length`` fixed; the relay
  sends each SSE event as one message, so an event is scrubbed whole);
- logs: ``LOG_FILTER`` on the proxy's and uvicorn's loggers rewrites each record's message
  and traceback;
- audit lines: ``AuditLog`` scrubs each line with the same ``Scrubber``.

Only the upstream key is scrubbed: in pass-through mode the key is the caller's own, and proxy
keys are the caller's own too (scrubbing a short one would mangle ordinary text).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["LOG_FILTER", "MASK", "ScrubResponses", "Scrubber", "install_log_filter"]

MASK = "***"


class Scrubber:
    """Replaces each secret with ``***`` in bytes and text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self._bytes = tuple(s.encode() for s in self.secrets)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def data(self, data: bytes) -> bytes:
        """``data`` with every secret masked."""
        for secret in self._bytes:
            if secret in data:
                data = data.replace(secret, MASK.encode())
        return data

    def text(self, text: str) -> str:
        """``text`` with every secret masked."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class ScrubResponses:
    """Pure ASGI middleware: masks the secrets in response headers and bodies."""

    def __init__(self, app: Any, *, scrubber: Scrubber) -> None:
        self.app = app
        self.scrubber = scrubber

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.scrubber:
            await self.app(scope, receive, send)
            return
        scrub = self.scrubber.data
        start: dict[str, Any] | None = None

        async def scrubbing_send(message: Any) -> None:
            nonlocal start
            kind = message["type"]
            if kind == "http.response.start":
                headers = [(k, scrub(v)) for k, v in message.get("headers", [])]
                if any(k.lower() == b"content-length" for k, _ in headers):
                    # Held until the body: masking it changes its length.
                    start = {**message, "headers": headers}
                    return
                await send({**message, "headers": headers})  # a stream: no length to fix
                return
            if kind == "http.response.body":
                body = message.get("body", b"")
                clean = scrub(body)
                if start is not None:
                    if clean != body:
                        start["headers"] = _fix_length(
                            start["headers"], len(clean), whole=not message.get("more_body")
                        )
                    await send(start)
                    start = None
                await send({**message, "body": clean})
                return
            if start is not None:
                await send(start)
                start = None
            await send(message)

        await self.app(scope, receive, scrubbing_send)


def _fix_length(
    headers: list[tuple[bytes, bytes]], length: int, *, whole: bool
) -> list[tuple[bytes, bytes]]:
    """Headers with ``content-length`` set to ``length`` (a whole body) or dropped (the first of
    several body messages: the length of the rest is not known yet)."""
    out = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    if whole:
        out.append((b"content-length", str(length).encode()))
    return out


class _LogScrubber(logging.Filter):
    """Masks known secrets in log records (message and traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._scrubber = Scrubber(())

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._scrubber = Scrubber([*self._scrubber.secrets, *secrets])

    def filter(self, record: logging.LogRecord) -> bool:
        scrubber = self._scrubber
        if not scrubber:
            return True
        message = record.getMessage()
        clean = scrubber.text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrubber.text(record.exc_text)
        if record.stack_info:
            record.stack_info = scrubber.text(record.stack_info)
        return True


LOG_FILTER = _LogScrubber()
# Loggers that can see upstream text or errors: the proxy's, the server's, the HTTP client's.
_LOGGERS = ("guardrail", "guardrail.proxy", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx")


def install_log_filter(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in every record of the proxy's, uvicorn's and httpx's loggers.

    The filter is process-wide (loggers are): secrets of every app built in the process are
    masked.
    """
    LOG_FILTER.add(secrets)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if LOG_FILTER not in logger.filters:
            logger.addFilter(LOG_FILTER)
