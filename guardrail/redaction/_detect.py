"""One detector per policy: runs PII and secret detection and applies the policy's actions."""

from __future__ import annotations

from collections.abc import Sequence

from guardrail.policy import EntityRules
from guardrail.types import Entity, Role

from ._pii import PiiDetector, RawEntity
from ._secrets import SecretsDetector

__all__ = ["EntityDetector", "resolve_overlaps"]


class EntityDetector:
    """The detectors a policy's ``entities`` section turns on.

    Args:
        rules: the policy's entity rules.
    """

    def __init__(self, rules: EntityRules) -> None:
        self.rules = rules
        self._pii = PiiDetector(rules.pii) if rules.pii is not None else None
        self._secrets = SecretsDetector(rules.secrets) if rules.secrets is not None else None

    @property
    def active(self) -> bool:
        """True when a detector runs."""
        return self._pii is not None or self._secrets is not None

    def warm_up(self) -> None:
        """Build the detectors now (imports Presidio / detect-secrets)."""
        for detector in (self._pii, self._secrets):
            if detector is not None:
                detector.warm_up()

    def detect(self, text: str, role: Role) -> tuple[Entity, ...]:
        """Entities in ``text``, non-overlapping, in order, each with the policy's action."""
        if not text.strip():
            return ()
        found: list[tuple[str, RawEntity]] = []
        if self._secrets is not None:
            found += [("secrets", raw) for raw in self._secrets.detect(text)]
        if self._pii is not None:
            found += [("pii", raw) for raw in self._pii.detect(text)]
        return tuple(
            Entity(
                type=etype,
                start=start,
                end=end,
                score=round(score, 4),
                detector=detector,
                action=self.rules.action_for(etype, role),
            )
            for detector, (etype, start, end, score) in resolve_overlaps(found)
        )


def resolve_overlaps(
    found: Sequence[tuple[str, RawEntity]],
) -> list[tuple[str, RawEntity]]:
    """Keep non-overlapping findings: secrets before PII, then higher score, then longer span."""
    ranked = sorted(
        found,
        key=lambda f: (f[0] != "secrets", -f[1][3], -(f[1][2] - f[1][1]), f[1][1]),
    )
    kept: list[tuple[str, RawEntity]] = []
    for item in ranked:
        _, (_, start, end, _) = item
        if end <= start:
            continue
        if all(end <= k[1][1] or start >= k[1][2] for k in kept):
            kept.append(item)
    return sorted(kept, key=lambda f: f[1][1])
