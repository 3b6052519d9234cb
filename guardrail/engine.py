"""The policy engine: ``evaluate(policy, scores) -> Verdict``.

Pure: no I/O, no model, no environment. Precedence: a block-list match blocks; otherwise an
allow-list match allows; otherwise the thresholds decide and the most severe action wins, with
the policy's ``outside_coverage`` (flag or block) as a floor when the scores say the language is
outside the classifier's coverage.
"""

from __future__ import annotations

from collections.abc import Sequence

from guardrail.policy import DirectionThresholds, Policy, Thresholds
from guardrail.types import Action, Entity, FiredCategory, Role, ScoreSet, Verdict

__all__ = ["apply_entities", "apply_topics", "error_verdict", "evaluate", "unchecked_reason"]

_UNCHECKED = "could not be checked: "


def _fire(name: str, score: float, thresholds: Thresholds | None) -> FiredCategory | None:
    if thresholds is None:
        return None
    if thresholds.block_at is not None and score >= thresholds.block_at:
        return FiredCategory(
            category=name, score=score, threshold=thresholds.block_at, action=Action.BLOCK
        )
    if thresholds.flag_at is not None and score >= thresholds.flag_at:
        return FiredCategory(
            category=name, score=score, threshold=thresholds.flag_at, action=Action.FLAG
        )
    return None


def _fired(
    policy: Policy, scores: ScoreSet, role: Role, limits: DirectionThresholds
) -> list[FiredCategory]:
    fired = []
    overall = _fire("unsafe", scores.unsafe, limits.unsafe)
    if overall:
        fired.append(overall)
    for cat in policy.resolved_taxonomy.for_role(role):
        score = scores.categories.get(cat.id)
        if score is None:
            continue
        hit = _fire(cat.id, score, limits.for_category(cat.id))
        if hit:
            fired.append(hit)
    if role is Role.RESPONSE and scores.refusal is not None:
        refused = _fire("refusal", scores.refusal, limits.refusal)
        if refused:
            fired.append(refused)
    fired.sort(key=lambda f: (-f.action.severity, -f.score))
    return fired


def evaluate(
    policy: Policy,
    scores: ScoreSet,
    *,
    role: Role = Role.PROMPT,
    text: str | None = None,
    notes: tuple[str, ...] = (),
    views: Sequence[str] = (),
) -> Verdict:
    """Decide what to do with one scored text.

    Args:
        policy: the policy to apply.
        scores: the classifier's scores for the text.
        role: prompt or response (thresholds and categories differ).
        text: the text, for block- and allow-list matching (lists are skipped when None).
        notes: remarks to carry into the verdict.
        views: normalised views of the text (``guardrail.views.normalize``); the block-list is
            matched against them too, the allow-list only against the text itself.

    Returns:
        The verdict: action, fired thresholds, what decided, language, policy identity.
    """
    role = Role(role)
    language = scores.language
    limits = policy.thresholds_for(role, language)
    fired = _fired(policy, scores, role, limits)
    decided_by: list[str] = []
    extra_notes = list(notes)
    if text is not None and (hit := _blocklisted(policy, (text, *views), role)) is not None:
        action = Action.BLOCK
        decided_by.append("blocklist")
        extra_notes.append(f"blocklist matched {hit[:80]!r}")
    elif text is not None and (hit := policy.allowlist.search(text, role)) is not None:
        action = Action.ALLOW
        decided_by.append("allowlist")
        extra_notes.append(f"allowlist matched {hit[:80]!r}")
    else:
        action = Action.most_severe(*(f.action for f in fired))
        if fired:
            decided_by.append("threshold")
        if scores.coverage == "outside" and policy.outside_coverage != "score":
            # At least this action for a language the classifier does not cover.
            floor = Action(policy.outside_coverage)
            if floor.severity >= action.severity:
                decided_by.append("coverage:outside")
            action = Action.most_severe(action, floor)
            extra_notes.append(
                f"language {language or 'und'!r} is outside the classifier's coverage: "
                f"at least {floor.value} (outside_coverage={policy.outside_coverage})"
            )
    if action is not Action.ALLOW or decided_by:
        if scores.stage:
            decided_by.append(f"stage:{scores.stage}")
        if scores.view:
            decided_by.append(f"view:{scores.view}")
    return Verdict(
        action=action,
        role=role,
        scores=scores,
        categories=tuple(fired),
        decided_by=tuple(decided_by),
        language=language,
        language_confidence=scores.language_confidence,
        coverage=scores.coverage,
        classifier=scores.classifier,
        policy=policy.name,
        policy_hash=policy.content_hash,
        notes=tuple(extra_notes) + scores.notes,
    )


def _blocklisted(policy: Policy, texts: tuple[str, ...], role: Role) -> str | None:
    for text in texts:
        hit = policy.blocklist.search(text, role)
        if hit is not None:
            return hit
    return None


def error_verdict(
    policy: Policy, *, role: Role, error: str, classifier: str = "", language: str | None = None
) -> Verdict:
    """The verdict when scoring failed: the policy's ``on_error`` decides (block fails closed)."""
    action = Action.BLOCK if policy.on_error == "block" else Action.ALLOW
    return Verdict(
        action=action,
        role=Role(role),
        scores=ScoreSet(unsafe=0.0, classifier=classifier, language=language),
        decided_by=("error",),
        language=language,
        classifier=classifier,
        policy=policy.name,
        policy_hash=policy.content_hash,
        notes=(
            f"{_UNCHECKED}{error} ({'fail closed' if action is Action.BLOCK else 'fail open'})",
        ),
    )


def unchecked_reason(verdict: Verdict) -> str | None:
    """Why a verdict decided by an error could not check its text (``classifier timeout``,
    ``classifier error (ClassifierError)``, ...); None for a verdict that checked it."""
    if "error" not in verdict.decided_by:
        return None
    for note in verdict.notes:
        if note.startswith(_UNCHECKED):
            return note.removeprefix(_UNCHECKED).rsplit(" (fail ", 1)[0]
    return "classifier error"


def apply_entities(verdict: Verdict, entities: Sequence[Entity]) -> Verdict:
    """The verdict with the entities found in its text, and their actions taken into account.

    The most severe action wins (a secret the policy blocks blocks; an e-mail it redacts turns
    an allow or a flag into redact); each type whose action counted is named in ``decided_by``
    as ``entity:TYPE``. Nothing changes when ``entities`` is empty.
    """
    if not entities:
        return verdict
    action = Action.most_severe(verdict.action, *(e.action for e in entities))
    decided_by = list(verdict.decided_by)
    if action is not verdict.action or action is not Action.ALLOW:
        for entity in entities:
            label = f"entity:{entity.type}"
            if entity.action is action and label not in decided_by:
                decided_by.append(label)
    return verdict.with_updates(
        action=action, entities=tuple(entities), decided_by=tuple(decided_by)
    )


def apply_topics(verdict: Verdict, fired: Sequence[FiredCategory]) -> Verdict:
    """The verdict with topic rails that fired (``topic:NAME``, ``off_topic``) taken in.

    The most severe action wins; each rail whose action counted is named in ``decided_by``.
    """
    if not fired:
        return verdict
    action = Action.most_severe(verdict.action, *(f.action for f in fired))
    decided_by = list(verdict.decided_by)
    for hit in fired:
        if hit.action is action and hit.category not in decided_by:
            decided_by.append(hit.category)
    categories = sorted((*verdict.categories, *fired), key=lambda f: (-f.action.severity, -f.score))
    return verdict.with_updates(
        action=action, categories=tuple(categories), decided_by=tuple(decided_by)
    )
