"""Personal data and secrets: detection, typed placeholders and restoring them.

``EntityDetector`` runs the detectors a policy's ``entities`` section turns on (Presidio for
PII, detect-secrets for secrets; both imported on first use, both offline) and gives each
finding the policy's action for its type and direction. ``Vault`` replaces the ones to redact
with placeholders and restores them in answers (``StreamRestorer`` for streamed ones).
"""

from __future__ import annotations

from guardrail.redaction._detect import EntityDetector, resolve_overlaps
from guardrail.redaction._payload import TEXT_KEYS, map_texts, restore_payload
from guardrail.redaction._vault import PLACEHOLDER, Redaction, StreamRestorer, Vault, mask

__all__ = [
    "PLACEHOLDER",
    "TEXT_KEYS",
    "EntityDetector",
    "Redaction",
    "StreamRestorer",
    "Vault",
    "map_texts",
    "mask",
    "resolve_overlaps",
    "restore_payload",
]
