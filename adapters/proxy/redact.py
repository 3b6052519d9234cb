"""Redaction in the proxy: the request body gets placeholders, the answer gets the values back.

When the prompt's verdict is ``redact``, every string of the JSON body that the proxy moderates
(``fields.py``: all but the listed ids, settings and media) is redacted with one vault for the
request; the vault restores the answer (``restore_payload`` for whole bodies, one
``StreamRestorer`` per streamed choice or Responses part). The vault lives only as long as the
request and is never logged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from guardrail.redaction import Vault
from guardrail.types import Action, Role

from .body import dumps
from .fields import is_unmoderated
from .service import Checked, RequestContext

__all__ = ["map_moderated", "redact_body"]


def map_moderated(
    shape: str, value: Any, fn: Callable[[str], str], path: tuple[str, ...] = ()
) -> Any:
    """``value`` with ``fn`` applied to every string the proxy moderates (a new object)."""
    if isinstance(value, str):
        return fn(value) if value and not is_unmoderated(shape, path) else value
    if isinstance(value, Mapping):
        return {k: map_moderated(shape, v, fn, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [map_moderated(shape, v, fn, (*path, "[]")) for v in value]
    return value


async def redact_body(
    ctx: RequestContext, body: bytes, checked: Checked, shape: str
) -> tuple[bytes, Vault | None]:
    """The body to forward, and the vault (None when the verdict does not redact).

    Args:
        ctx: the request (its guard redacts).
        body: the request body, already parsed and validated.
        checked: the prompt's verdicts.
        shape: the body's shape in ``fields.UNMODERATED`` (``chat.request``, ...).
    """
    if checked.action is not Action.REDACT:
        return body, None
    payload = json.loads(body)
    vault = Vault()

    def one(text: str) -> str:
        return ctx.guard.redact(text, role=Role.PROMPT, vault=vault).text

    # The detectors are CPU work: keep them off the event loop.
    redacted = await asyncio.to_thread(map_moderated, shape, payload, one)
    return dumps(redacted), vault
