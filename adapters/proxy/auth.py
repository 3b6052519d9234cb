"""Authentication and the headers sent upstream.

Two modes:

- **Proxy keys** (``GUARDRAIL_API_KEYS`` set): callers send ``Authorization: Bearer <proxy key>``,
  checked in constant time against every configured key; the upstream gets
  ``GUARDRAIL_UPSTREAM_API_KEY`` (or no Authorization when that is unset).
- **Pass-through** (no proxy keys): the caller's ``Authorization`` header is forwarded upstream
  as is, and the upstream decides. The proxy itself authenticates nobody in this mode.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from .errors import ProxyHTTPError
from .settings import ProxySettings

__all__ = ["Authenticator"]

# Caller headers worth forwarding upstream; everything else (cookies, hop-by-hop headers, the
# proxy's own headers) stays here.
_FORWARDED = (
    "accept",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "user-agent",
    "x-request-id",
)


class Authenticator:
    """Checks callers and builds upstream headers for one settings object."""

    def __init__(self, settings: ProxySettings) -> None:
        self._keys = [k.get_secret_value().encode() for k in settings.api_keys]
        key = settings.upstream_api_key
        self._upstream_auth = f"Bearer {key.get_secret_value()}" if key else None

    @property
    def pass_through(self) -> bool:
        """True when no proxy keys are configured."""
        return not self._keys

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise ``ProxyHTTPError(401)`` unless the caller presents a valid proxy key.

        Every configured key is compared (no early exit), each with ``hmac.compare_digest``.
        """
        if self.pass_through:
            return
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ProxyHTTPError(
                401,
                "Missing proxy API key: send 'Authorization: Bearer <key>'.",
                code="invalid_api_key",
            )
        presented = token.strip().encode()
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(presented, key)
        if not ok:
            raise ProxyHTTPError(401, "Incorrect proxy API key.", code="invalid_api_key")

    def upstream_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers for the upstream request, from the caller's and the settings."""
        out = {name: headers[name] for name in _FORWARDED if name in headers}
        out["content-type"] = "application/json"
        if self.pass_through:
            if "authorization" in headers:
                out["authorization"] = headers["authorization"]
        elif self._upstream_auth is not None:
            out["authorization"] = self._upstream_auth
        return out

    def scrub(self, data: bytes) -> bytes:
        """Remove the upstream key from bytes about to be returned (upstream errors may echo
        it); a no-op in pass-through mode, where the key is the caller's own."""
        if self._upstream_auth is None:
            return data
        secret = self._upstream_auth.removeprefix("Bearer ").encode()
        return data.replace(secret, b"***") if secret in data else data
