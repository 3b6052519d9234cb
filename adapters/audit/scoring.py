"""Score prepared rows with a ``Guard`` and turn verdicts into output rows.

Shared by the local runner and the Ray workers, so both write exactly the same rows.
"""

from __future__ import annotations

from typing import Any

from guardrail.guard import Guard
from guardrail.redaction import Vault
from guardrail.types import Action, Role, Verdict

from .fields import Prepared

__all__ = ["error_row", "score_batch", "verdict_row"]


def score_batch(
    guard: Guard, rows: list[Prepared], *, redacted_text: bool = False
) -> list[dict[str, Any]]:
    """Score a batch (one ``check_many`` call per role present) and return output rows in order.

    Rows that carry an error are not scored; they become rows with that error. With
    ``redacted_text``, each row also gets its text with every entity the policy's detectors
    found replaced by a placeholder (whatever the entity's action: the output never holds the
    values).
    """
    out: list[dict[str, Any] | None] = [None] * len(rows)
    by_role: dict[Role, list[int]] = {}
    for i, p in enumerate(rows):
        if p.error is not None or p.text is None:
            out[i] = error_row(p, p.error or "no text")
        else:
            by_role.setdefault(p.role, []).append(i)
    for role, indexes in by_role.items():
        texts = [rows[i].text or "" for i in indexes]
        prompts = [rows[i].prompt for i in indexes] if role is Role.RESPONSE else None
        languages = [rows[i].language for i in indexes]
        verdicts = guard.check_many(texts, role, prompts, languages=languages)
        for i, verdict, text in zip(indexes, verdicts, texts, strict=True):
            row = verdict_row(rows[i], verdict)
            if redacted_text:
                row["redacted_text"] = _redacted(text, verdict)
            out[i] = row
    return [r for r in out if r is not None]


def _base(p: Prepared) -> dict[str, Any]:
    return {
        "row": p.row,
        "id": p.id,
        "role": p.role.value,
        "label": p.label,
        "label_category": p.label_category,
    }


def verdict_row(p: Prepared, verdict: Verdict) -> dict[str, Any]:
    """The output row for a scored input row."""
    failed = "error" in verdict.decided_by
    return {
        **_base(p),
        "action": verdict.action.value,
        "unsafe": None if failed else verdict.scores.unsafe,
        "categories": {} if failed else dict(verdict.scores.categories),
        "fired": [c.category for c in verdict.categories],
        "language": verdict.language,
        "language_confidence": verdict.language_confidence,
        "decided_by": list(verdict.decided_by),
        "error": _clean("; ".join(verdict.notes)) if failed else None,
        "entities": _counts(verdict),
        "redacted_text": None,
    }


def _counts(verdict: Verdict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entity in verdict.entities:
        counts[entity.type] = counts.get(entity.type, 0) + 1
    return counts


def _redacted(text: str, verdict: Verdict) -> str:
    every = [e.model_copy(update={"action": Action.REDACT}) for e in verdict.entities]
    return _clean(Vault().redact(text, every)[0])


def error_row(p: Prepared, error: str) -> dict[str, Any]:
    """The output row for an input row that could not be scored."""
    return {
        **_base(p),
        "action": None,
        "unsafe": None,
        "categories": {},
        "fired": [],
        "language": None,
        "language_confidence": None,
        "decided_by": [],
        "error": _clean(error),
        "entities": {},
        "redacted_text": None,
    }


def _clean(text: str) -> str:
    # Messages may quote input; a lone surrogate in them would break UTF-8 output.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
