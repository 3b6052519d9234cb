"""Secrets through Yelp's detect-secrets plugins, run on text rather than files.

The plugins' own ``analyze_line`` may verify a secret against its provider (a network call), so
only their offline matching (``analyze_string``) is used, with the high-entropy plugins' limits
and detect-secrets' heuristic filters (sequential strings, UUIDs, templated values) applied as its
scanner would. Current OpenAI-style keys (``sk-proj-...``) that the plugin's older pattern misses
are matched by one pattern of ours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from guardrail.errors import ConfigError
from guardrail.policy import SecretsSettings

from ._pii import RawEntity

__all__ = ["SecretsDetector"]

# detect-secrets plugin (module, class) -> our type name.
_PLUGINS: dict[tuple[str, str], str] = {
    ("aws", "AWSKeyDetector"): "AWS_KEY",
    ("github_token", "GitHubTokenDetector"): "GITHUB_TOKEN",
    ("gitlab_token", "GitLabTokenDetector"): "GITLAB_TOKEN",
    ("slack", "SlackDetector"): "SLACK_TOKEN",
    ("stripe", "StripeDetector"): "STRIPE_KEY",
    ("openai", "OpenAIDetector"): "OPENAI_KEY",
    ("private_key", "PrivateKeyDetector"): "PRIVATE_KEY",
    ("jwt", "JwtTokenDetector"): "JWT",
    ("basic_auth", "BasicAuthDetector"): "BASIC_AUTH",
}
_OPENAI_CURRENT = re.compile(r"(?<![\w-])sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}")
_KEY_BLOCK_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----")


def _plugins(settings: SecretsSettings) -> list[tuple[str, Any]]:
    try:
        import importlib

        from detect_secrets.plugins.high_entropy_strings import (
            Base64HighEntropyString,
            HexHighEntropyString,
        )
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "secret detection (entities.secrets) needs detect-secrets (a dependency of "
            "guardrail-sdk): pip install detect-secrets"
        ) from e
    wanted = set(settings.types) if settings.types is not None else None
    out: list[tuple[str, Any]] = []
    for (module, name), ours in _PLUGINS.items():
        if wanted is None or ours in wanted:
            cls = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
            out.append((ours, cls()))
    if wanted is None or "HIGH_ENTROPY" in wanted:
        out.append(("HIGH_ENTROPY", Base64HighEntropyString(limit=settings.base64_limit)))
        out.append(("HIGH_ENTROPY", HexHighEntropyString(limit=settings.hex_limit)))
    return out


class SecretsDetector:
    """detect-secrets' plugins for one ``SecretsSettings``; built on first use."""

    def __init__(self, settings: SecretsSettings) -> None:
        self.settings = settings
        self._plugins: list[tuple[str, Any]] | None = None

    def warm_up(self) -> None:
        """Import the plugins now."""
        if self._plugins is None:
            self._plugins = _plugins(self.settings)

    def detect(self, text: str) -> Sequence[RawEntity]:
        """Secret spans in ``text``: (type, start, end, score)."""
        self.warm_up()
        assert self._plugins is not None
        from detect_secrets.filters import heuristic

        found: list[RawEntity] = []
        for ours, plugin in self._plugins:
            if ours == "HIGH_ENTROPY":
                # Quoted strings; the plugin yields their contents, the limit is applied here.
                for value in set(plugin.analyze_string(text)):
                    if value and _entropy_ok(plugin, value, text, heuristic):
                        found += [(ours, s, s + len(value), 0.7) for s in _occurrences(text, value)]
                continue
            for regex in plugin.denylist:
                for match in regex.finditer(text):
                    start, end = _secret_span(ours, match)
                    if ours == "PRIVATE_KEY" and (m := _KEY_BLOCK_END.search(text, end)):
                        end = m.end()
                    found.append((ours, start, end, 1.0))
        if self.settings.types is None or "OPENAI_KEY" in self.settings.types:
            found += [
                ("OPENAI_KEY", m.start(), m.end(), 1.0) for m in _OPENAI_CURRENT.finditer(text)
            ]
        return found


def _secret_span(ours: str, match: re.Match[str]) -> tuple[int, int]:
    """The secret's span in a plugin's match.

    Some patterns capture the secret itself (basic auth: the password; AWS: the secret key after
    its name), others capture only a prefix (GitHub: ``ghp``), so the longest group of at least
    8 characters is taken, else the whole match (basic auth: always its password).
    """
    if ours == "BASIC_AUTH" and match.re.groups:
        return match.span(1)
    best = (match.start(), match.end())
    groups = [match.span(i) for i in range(1, match.re.groups + 1) if match.group(i)]
    longest = max(groups, key=lambda span: span[1] - span[0], default=None)
    if longest is not None and longest[1] - longest[0] >= 8:
        best = longest
    return best


def _entropy_ok(plugin: Any, value: str, text: str, heuristic: Any) -> bool:
    if plugin.calculate_shannon_entropy(value) < plugin.entropy_limit:
        return False
    return not (
        heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_templated_secret(value)
        or heuristic.is_likely_id_string(value, text)
    )


def _occurrences(text: str, value: str) -> list[int]:
    out, pos = [], text.find(value)
    while pos >= 0:
        out.append(pos)
        pos = text.find(value, pos + len(value))
    return out
