"""What the (chat) completions handlers, the stream relay and the other routes share: the
checked request (``Prepared``) and the helpers for the upstream's reply.

``chat`` builds a ``Prepared`` and hands streams to ``stream``; both, and ``routes``, import
this module, which imports neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi.responses import Response

from guardrail.redaction import Vault

from .body import dumps
from .errors import ProxyHTTPError
from .service import ProxyService, RequestContext
from .upstream import UpstreamReply

__all__ = ["Prepared", "dumps", "json_object", "upstream_error"]


@dataclass(slots=True)
class Prepared:
    """A checked request, ready to forward."""

    ctx: RequestContext
    body: bytes
    headers: dict[str, str]
    chat: bool
    stream: bool
    context: str | None
    vault: Vault | None = None  # set when the prompt was redacted: restores the answer


def upstream_error(service: ProxyService, ctx: RequestContext, reply: UpstreamReply) -> Response:
    """An upstream HTTP error, returned with its status and body (the upstream key scrubbed)."""
    return Response(
        service.auth.scrub(reply.content),
        status_code=reply.status,
        media_type=reply.content_type,
        headers={**reply.headers, **service.headers(ctx)},
    )


def json_object(content: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(content)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProxyHTTPError(
            502, "The upstream API returned a body that is not JSON.", code="upstream_invalid"
        ) from e
    if not isinstance(payload, dict):
        raise ProxyHTTPError(
            502, "The upstream API returned JSON that is not an object.", code="upstream_invalid"
        )
    return payload
