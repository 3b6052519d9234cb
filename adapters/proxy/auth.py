"""Authentication and the headers sent upstream.

Two modes:

- **Proxy keys** (``GUARDRAIL_API_KEYS`` or named ``keys`` set): callers send
  ``Authorization: Bearer <proxy key>`` (or ``x-api-key: <proxy key>``, as Anthropic clients
  do); its SHA-256 is compared in constant time with every configured key's; the upstream gets
  ``GUARDRAIL_UPSTREAM_API_KEY`` (or no Authorization when that is unset). A named key binds
  the caller to its policy, the policies it may switch to and the models it may call.
- **Pass-through** (no proxy keys): the caller's ``Authorization`` header is forwarded upstream
  as is, and the upstream decides. The proxy itself authenticates nobody in this mode.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ProxyHTTPError
from .settings import ProxyKey, ProxySettings, hash_key

__all__ = ["ANONYMOUS", "ANTHROPIC_VERSION", "STATIC", "Authenticator", "Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a named key (with its bindings), a plain api_keys key, or anyone."""

    name: str
    key: ProxyKey | None = None


#: The caller in pass-through mode (the proxy authenticates nobody).
ANONYMOUS = Caller("anonymous")
#: A caller with one of the unnamed ``api_keys``.
STATIC = Caller("api_keys")

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

# The same for the Anthropic upstream (/v1/messages).
_ANTHROPIC_FORWARDED = (
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "user-agent",
    "x-request-id",
)
#: The ``anthropic-version`` sent upstream when the caller sends none.
ANTHROPIC_VERSION = "2023-06-01"


class Authenticator:
    """Checks callers and builds upstream headers for one settings object."""

    def __init__(self, settings: ProxySettings) -> None:
        # (SHA-256 digest, caller) per key: plain keys are hashed here, named keys come hashed.
        self._keys = [(hash_key(k.get_secret_value()), STATIC) for k in settings.api_keys]
        self._keys += [(k.sha256, Caller(k.name, k)) for k in settings.keys]
        key = settings.upstream_api_key
        self._upstream_auth = f"Bearer {key.get_secret_value()}" if key else None
        anthropic_key = settings.anthropic_upstream_api_key
        self._anthropic_key = anthropic_key.get_secret_value() if anthropic_key else None

    @property
    def pass_through(self) -> bool:
        """True when no proxy keys are configured."""
        return not self._keys

    def check(self, headers: Mapping[str, str]) -> Caller:
        """The caller, or ``ProxyHTTPError(401)`` unless it presents a valid proxy key.

        The key comes from ``Authorization: Bearer`` or, failing that, ``x-api-key``. Its
        SHA-256 is compared with every configured key's (no early exit), each with
        ``hmac.compare_digest``.
        """
        if self.pass_through:
            return ANONYMOUS
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token, scheme = headers.get("x-api-key", ""), "bearer"
        if not token.strip():
            raise ProxyHTTPError(
                401,
                "Missing proxy API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="invalid_api_key",
            )
        presented = hash_key(token.strip())
        found: Caller | None = None
        for digest, caller in self._keys:
            if hmac.compare_digest(presented, digest):
                found = caller
        if found is None:
            raise ProxyHTTPError(401, "Incorrect proxy API key.", code="invalid_api_key")
        return found

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

    def anthropic_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Headers for the Anthropic upstream: its version and beta headers, and the key.

        Pass-through mode forwards the caller's ``x-api-key`` (or ``Authorization``); with
        proxy keys the upstream gets ``anthropic_upstream_api_key`` as ``x-api-key``.
        """
        out = {name: headers[name] for name in _ANTHROPIC_FORWARDED if name in headers}
        out.setdefault("anthropic-version", ANTHROPIC_VERSION)
        out["content-type"] = "application/json"
        if self.pass_through:
            for name in ("x-api-key", "authorization"):
                if name in headers:
                    out[name] = headers[name]
        elif self._anthropic_key is not None:
            out["x-api-key"] = self._anthropic_key
        return out

    def scrub(self, data: bytes) -> bytes:
        """Remove the upstream keys from bytes about to be returned (upstream errors may echo
        them); a no-op in pass-through mode, where the key is the caller's own."""
        secrets = [self._anthropic_key]
        if self._upstream_auth is not None:
            secrets.append(self._upstream_auth.removeprefix("Bearer "))
        for secret in secrets:
            if secret and secret.encode() in data:
                data = data.replace(secret.encode(), b"***")
        return data
