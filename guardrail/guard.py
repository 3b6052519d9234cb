"""``Guard``: one policy and its classifier; the object every adapter uses."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardrail._text import split_parts
from guardrail.classifiers.base import Classifier
from guardrail.engine import apply_entities, apply_topics, error_verdict, evaluate
from guardrail.errors import ClassifierError, ClassifierTimeout, ConfigError
from guardrail.language import UNDETERMINED, detect_language, normalize_language
from guardrail.policy import Policy, load_policy
from guardrail.redaction import EntityDetector, Redaction, Vault
from guardrail.registry import create_classifier
from guardrail.topics import TopicScorer
from guardrail.types import (
    Action,
    Entity,
    FiredCategory,
    Role,
    Sample,
    ScoreSet,
    Verdict,
    combined_coverage,
)
from guardrail.views.normalize import is_view_label, scoring_notes, view_samples

__all__ = ["Guard"]

logger = logging.getLogger("guardrail")

_executor_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _shared_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="guardrail"
            )
        return _executor


@dataclass(frozen=True, slots=True)
class _Piece:
    """One text the classifier scores on behalf of a sample: the sample itself, a part or a view."""

    owner: int
    label: str | None
    sample: Sample


class Guard:
    """A policy together with the classifier it names.

    Args:
        policy: a loaded ``Policy``.
        classifier: use this classifier instead of building the one the policy names
            (handy for tests and for sharing one model between guards).

    Example:
        >>> guard = Guard.from_policy("default")
        >>> guard.check_prompt("How do I bake bread?").action
        <Action.ALLOW: 'allow'>
    """

    def __init__(self, policy: Policy, *, classifier: Classifier | None = None) -> None:
        self.policy = policy
        if classifier is not None:
            _check_scored(policy, classifier)
        self._classifier = classifier
        self._lock = threading.Lock()
        self._detector = EntityDetector(policy.entities) if policy.entities.active else None
        topics = [*policy.banned_topics, *policy.allowed_topics]
        self._topics = TopicScorer(topics) if topics else None

    @classmethod
    def from_policy(
        cls, policy: str | Path | Policy = "default", *, classifier: Classifier | None = None
    ) -> Guard:
        """Build a guard from a built-in policy name, a YAML path or a ``Policy``.

        Raises:
            ConfigError: the policy is missing or invalid.
        """
        loaded = policy if isinstance(policy, Policy) else load_policy(policy)
        return cls(loaded, classifier=classifier)

    @property
    def classifier(self) -> Classifier:
        """The classifier, built on first use (model loading happens here, not at import)."""
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    built = create_classifier(
                        self.policy.classifier, taxonomy=self.policy.resolved_taxonomy
                    )
                    _check_scored(self.policy, built)
                    self._classifier = built
        return self._classifier

    @property
    def redacts(self) -> bool:
        """True when the policy looks for personal data or secrets (``entities``)."""
        return self._detector is not None

    def warm_up(self) -> None:
        """Build the classifier and the entity detectors now (model loading happens here)."""
        _ = self.classifier
        if self._detector is not None:
            self._detector.warm_up()
        if self._topics is not None:
            self._topics.warm_up()

    # -- personal data and secrets ---------------------------------------------------------

    def redact(
        self, text: str, *, role: Role | str = Role.PROMPT, vault: Vault | None = None
    ) -> Redaction:
        """Replace the personal data and secrets the policy redacts by typed placeholders.

        Only the entity detectors run (no classifier). Entities whose action is ``redact`` in
        this direction become ``<TYPE_N>`` placeholders; the others (block, flag, allow) are
        listed but left in place.

        Args:
            text: the text.
            role: ``prompt`` or ``response`` (the policy's rules differ per direction).
            vault: the request's vault, to number placeholders across several texts of one
                request (a new one when None); ``result.restore(answer)`` puts values back.

        Raises:
            TypeError: ``text`` is not a str.
            ConfigError: the policy has no ``entities`` section (nothing would be looked for).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if self._detector is None:
            raise ConfigError(
                f"policy {self.policy.name!r} looks for no personal data or secrets; add an "
                "`entities` section (see policies/redact-example.yaml)"
            )
        vault = vault if vault is not None else Vault()
        entities = self._detector.detect(text, Role(role))
        redacted, annotated = vault.redact(text, entities)
        return Redaction(redacted, annotated, vault)

    def entities(self, text: str, role: Role | str = Role.PROMPT) -> tuple[Entity, ...]:
        """The entities the policy's detectors find in ``text`` (empty when none run)."""
        if self._detector is None:
            return ()
        return self._detector.detect(text, Role(role))

    # -- adapters --------------------------------------------------------------------------

    def wrap(self, client: Any, **options: Any) -> Any:
        """Wrap an OpenAI-compatible client so its model calls are moderated.

        See ``guardrail.middleware.wrap`` for the options.
        """
        # Upward on purpose: middleware sits above guard; this convenience only delegates, at
        # call time (the one exception the import-linter layers contract allows).
        from guardrail import middleware

        return middleware.wrap(self, client, **options)

    def protect(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: moderate a ``prompt -> str`` function (sync, async or generator).

        See ``guardrail.middleware.protect`` for the options.
        """
        from guardrail import middleware  # upward on purpose, at call time: see ``wrap``

        return middleware.protect(self, fn, **options)

    # -- synchronous API -------------------------------------------------------------------

    def check_prompt(self, text: str, *, language: str | None = None) -> Verdict:
        """Check user input. Returns a verdict; a block is data, never an exception."""
        return self.check([Sample(text, Role.PROMPT, None, language)])[0]

    def check_response(
        self, text: str, prompt: str | None = None, *, language: str | None = None
    ) -> Verdict:
        """Check model output, optionally with the prompt it answers."""
        return self.check([Sample(text, Role.RESPONSE, prompt, language)])[0]

    def check_many(
        self,
        texts: Sequence[str],
        role: Role | str = Role.PROMPT,
        prompts: Sequence[str | None] | None = None,
        *,
        languages: Sequence[str | None] | None = None,
    ) -> list[Verdict]:
        """Check many texts in one batch; verdicts come back in input order.

        Args:
            texts: the texts.
            role: ``prompt`` or ``response`` for all of them.
            prompts: per-row prompts that responses answer (same length as ``texts``).
            languages: per-row known languages (None entries are detected).

        Raises:
            TypeError: ``texts`` is a bare string or holds a non-string.
            ValueError: ``prompts`` or ``languages`` has the wrong length.
        """
        return self.check(_samples(texts, Role(role), prompts, languages))

    def check(self, samples: Sequence[Sample]) -> list[Verdict]:
        """Check prepared samples (the general form of the methods above)."""
        return self._run(samples, self._score_sync)

    # -- asynchronous API ------------------------------------------------------------------

    async def acheck_prompt(self, text: str, *, language: str | None = None) -> Verdict:
        """Async ``check_prompt``: classification runs in a thread, with the policy's timeout."""
        return (await self.acheck([Sample(text, Role.PROMPT, None, language)]))[0]

    async def acheck_response(
        self, text: str, prompt: str | None = None, *, language: str | None = None
    ) -> Verdict:
        """Async ``check_response``."""
        return (await self.acheck([Sample(text, Role.RESPONSE, prompt, language)]))[0]

    async def acheck_many(
        self,
        texts: Sequence[str],
        role: Role | str = Role.PROMPT,
        prompts: Sequence[str | None] | None = None,
        *,
        languages: Sequence[str | None] | None = None,
    ) -> list[Verdict]:
        """Async ``check_many``."""
        return await self.acheck(_samples(texts, Role(role), prompts, languages))

    async def acheck(self, samples: Sequence[Sample]) -> list[Verdict]:
        """Async ``check``: the whole pipeline runs off the event loop."""
        samples = list(samples)
        # One thread hop: the timeout is enforced here by wait_for, so the worker thread calls
        # the classifier directly instead of going through the sync path's executor as well.
        task = asyncio.to_thread(self._run, samples, self._score_direct)
        timeout = self.policy.timeout_s
        if timeout is None:
            return await task
        try:
            return await asyncio.wait_for(task, timeout=timeout)
        except TimeoutError:
            logger.warning(
                "classifier %s timed out (no answer within %s s); %d texts could not be checked",
                self.policy.classifier.name,
                timeout,
                len(samples),
            )
            return [self._error(s, "classifier timeout") for s in samples]

    # -- pipeline --------------------------------------------------------------------------

    def _score_direct(self, samples: list[Sample]) -> list[ScoreSet]:
        return self.classifier.score(samples)

    def _score_sync(self, samples: list[Sample]) -> list[ScoreSet]:
        timeout = self.policy.timeout_s
        if timeout is None:
            return self.classifier.score(samples)
        future = _shared_executor().submit(self.classifier.score, samples)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError as e:
            future.cancel()
            raise ClassifierTimeout(f"no answer within {timeout} s") from e

    def _run(
        self, samples: Sequence[Sample], score: Callable[[list[Sample]], list[ScoreSet]]
    ) -> list[Verdict]:
        started = time.perf_counter()
        samples = [s if isinstance(s, Sample) else _bad_sample(s) for s in samples]
        verdicts: list[Verdict | None] = [None] * len(samples)
        pieces: list[_Piece] = []
        languages: list[tuple[str, float | None]] = []
        for i, sample in enumerate(samples):
            language = _language_of(sample)
            languages.append(language)
            early = self._expand(i, sample, language, pieces)
            if early is not None:
                verdicts[i] = early
        if pieces:
            self._score_pieces(samples, pieces, languages, verdicts, score)
        if self._detector is not None:
            t0 = time.perf_counter()
            for i, sample in enumerate(samples):
                found = self._detector.detect(sample.text, sample.role)
                verdict = verdicts[i]
                assert verdict is not None
                verdicts[i] = apply_entities(verdict, found)
            detect_ms = (time.perf_counter() - t0) * 1000
        if self._topics is not None:
            self._apply_topics(samples, verdicts)
        total_ms = (time.perf_counter() - started) * 1000
        out = []
        for v in verdicts:
            assert v is not None
            timings = {**v.timings, "total_ms": total_ms}
            if self._detector is not None:
                timings["entities_ms"] = detect_ms
            out.append(v.with_updates(timings=timings))
        return out

    def _apply_topics(self, samples: list[Sample], verdicts: list[Verdict | None]) -> None:
        """Score the samples the topic rails apply to and merge what fired into the verdicts."""
        assert self._topics is not None
        policy = self.policy
        todo = [
            i
            for i, s in enumerate(samples)
            if s.role in policy.topic_roles
            and s.text.strip()
            and "error" not in _decided(verdicts[i])
        ]
        if not todo:
            return
        scored = self._topics.score([samples[i].text for i in todo])
        banned = {t.name: t for t in policy.banned_topics}
        allowed = {t.name: t for t in policy.allowed_topics}
        for i, scores in zip(todo, scored, strict=True):
            fired: list[FiredCategory] = []
            for s in scores:
                topic = banned.get(s.topic)
                if topic is not None and s.score >= topic.threshold:
                    fired.append(
                        FiredCategory(
                            category=f"topic:{s.topic}",
                            score=s.score,
                            threshold=topic.threshold,
                            action=Action(topic.action),
                        )
                    )
            on_topic = [s for s in scores if s.topic in allowed]
            if on_topic and not any(s.score >= allowed[s.topic].threshold for s in on_topic):
                best = max(on_topic, key=lambda s: s.score)
                fired.append(
                    FiredCategory(
                        category="off_topic",
                        score=best.score,
                        threshold=allowed[best.topic].threshold,
                        action=Action(policy.off_topic_action),
                    )
                )
            verdict = verdicts[i]
            assert verdict is not None
            verdicts[i] = apply_topics(verdict, fired)

    def _expand(
        self, index: int, sample: Sample, language: tuple[str, float | None], pieces: list[_Piece]
    ) -> Verdict | None:
        """Queue what to score for one sample; return a verdict now when no scoring is needed."""
        start = len(pieces)
        early = self._expand_original(index, sample, language, pieces)
        if early is None:
            self._expand_views(index, pieces[start:], pieces)
        return early

    def _expand_views(self, index: int, originals: list[_Piece], pieces: list[_Piece]) -> None:
        """Queue the text views (and language parts) of what ``_expand_original`` queued."""
        settings = self.policy.normalization
        if len(originals) > 1:
            # A long text's parts get views within one budget, and no language parts.
            settings = settings.model_copy(update={"language_parts": False})
        budget = settings.max_views + (settings.max_language_parts * settings.language_parts)
        for original in originals:
            if budget <= 0:
                break  # the rest would be computed only to be cut off
            extra = view_samples(original.sample, settings)[:budget]
            pieces.extend(_Piece(index, label, view) for label, view in extra)
            budget -= len(extra)

    def _expand_original(
        self, index: int, sample: Sample, language: tuple[str, float | None], pieces: list[_Piece]
    ) -> Verdict | None:
        policy, text = self.policy, sample.text
        if not text.strip():
            return _plain_verdict(policy, sample, language, Action.ALLOW, "empty", "empty text")
        lang = language[0]
        base = Sample(text, sample.role, sample.context, lang)
        if len(text) <= policy.max_chars:
            pieces.append(_Piece(index, None, base))
            return None
        if policy.on_long_input == "block":
            return _plain_verdict(
                policy,
                sample,
                language,
                Action.BLOCK,
                "max_chars",
                f"text of {len(text)} characters exceeds max_chars={policy.max_chars}",
            )
        if policy.on_long_input == "truncate":
            pieces.append(
                _Piece(
                    index,
                    "truncated",
                    Sample(text[: policy.max_chars], sample.role, sample.context, lang),
                )
            )
            return None
        parts = split_parts(text, policy.max_chars)
        if len(parts) > policy.max_parts:
            return _plain_verdict(
                policy,
                sample,
                language,
                Action.BLOCK,
                "max_chars",
                f"text needs {len(parts)} parts of {policy.max_chars} characters; "
                f"max_parts={policy.max_parts}",
            )
        for k, part in enumerate(parts):
            pieces.append(
                _Piece(index, f"part:{k}", Sample(part, sample.role, sample.context, lang))
            )
        return None

    def _score_checked(
        self, score: Callable[[list[Sample]], list[ScoreSet]], pieces: list[_Piece]
    ) -> list[ScoreSet]:
        results = score([p.sample for p in pieces])
        if len(results) != len(pieces):
            raise ClassifierError(f"returned {len(results)} score sets for {len(pieces)} samples")
        _check_categories(results, self.policy)
        return results

    def _fail(
        self,
        samples: list[Sample],
        pieces: list[_Piece],
        verdicts: list[Verdict | None],
        error: Exception,
    ) -> None:
        # The one deliberate catch in the core: a failing backend must not crash the caller;
        # on_error chooses between failing closed (block) and open (allow), and says so. The
        # verdict says what failed, with any URL (an internal endpoint) masked; the warning has
        # it all.
        owners = {p.owner for p in pieces}
        logger.warning(
            "classifier %s failed; %d texts could not be checked: %s: %s",
            self.policy.classifier.name,
            len(owners),
            type(error).__name__,
            error,
        )
        message = _unchecked(error)
        for owner in sorted(owners):
            if verdicts[owner] is None:
                verdicts[owner] = self._error(samples[owner], message)

    def _score_pieces(
        self,
        samples: list[Sample],
        pieces: list[_Piece],
        languages: list[tuple[str, float | None]],
        verdicts: list[Verdict | None],
        score: Callable[[list[Sample]], list[ScoreSet]],
    ) -> None:
        t0 = time.perf_counter()
        try:
            results = self._score_checked(score, pieces)
        except ConfigError:
            # Not a failure to score but a configuration problem (a missing extra, a model
            # that cannot be loaded): no verdict can be right, so it reaches the caller.
            raise
        except Exception as e:
            owners: dict[int, list[_Piece]] = {}
            for p in pieces:
                owners.setdefault(p.owner, []).append(p)
            if isinstance(e, ClassifierTimeout) or len(owners) < 2:
                self._fail(samples, pieces, verdicts, e)
                return
            # One bad text must not cost the others their verdicts: score each text's pieces
            # on their own, and fail only the texts that fail again. When the first two texts
            # retried alone fail too and none has passed, the backend itself is failing (a
            # model or endpoint down): the rest fail at once instead of one call each.
            pieces, results = [], []
            failed = 0
            for own in owners.values():
                if failed >= _RETRIES_BEFORE_GIVING_UP and not pieces:
                    self._fail(samples, own, verdicts, e)
                    continue
                try:
                    results += self._score_checked(score, own)
                except ConfigError:
                    raise
                except Exception as one:
                    failed += 1
                    self._fail(samples, own, verdicts, one)
                    continue
                pieces += own
        classify_ms = (time.perf_counter() - t0) * 1000
        grouped: dict[int, list[tuple[str | None, ScoreSet]]] = {}
        views: dict[int, list[str]] = {}
        for piece, result in zip(pieces, results, strict=True):
            grouped.setdefault(piece.owner, []).append((piece.label, result))
            if is_view_label(piece.label):
                views.setdefault(piece.owner, []).append(piece.sample.text)
        for owner, scored in grouped.items():
            sample = samples[owner]
            combined = _combine(scored, languages[owner], self.policy.classifier.name)
            verdict = evaluate(
                self.policy,
                combined,
                role=sample.role,
                text=sample.text,
                notes=scoring_notes([label for label, _ in scored]),
                views=views.get(owner, ()),
            )
            verdicts[owner] = verdict.with_updates(timings={"classify_ms": classify_ms})

    def _error(self, sample: Sample, message: str) -> Verdict:
        lang = normalize_language(sample.language) if sample.language else None
        return error_verdict(
            self.policy,
            role=sample.role,
            error=message,
            classifier=self.policy.classifier.name,
            language=lang,
        )


# A batch that fails is retried text by text; this many failures before any success means
# the backend fails for every text, and the remaining texts are not retried.
_RETRIES_BEFORE_GIVING_UP = 2


def _check_scored(policy: Policy, classifier: Classifier) -> None:
    """ConfigError when the policy sets thresholds for categories the classifier does not score."""
    scored = getattr(classifier, "scored_categories", None)
    name = getattr(classifier, "name", policy.classifier.name)
    policy.check_scored(scored, name)


class _UnknownCategory(ClassifierError):
    """A classifier returned a category id its taxonomy does not have."""

    def __init__(self, category: str, taxonomy: str) -> None:
        super().__init__(f"unknown category id {category!r} (not in taxonomy {taxonomy!r})")
        self.category = category


def _check_categories(results: Sequence[ScoreSet], policy: Policy) -> None:
    """Fail loudly on a category id the taxonomy does not know (it would be dropped silently:
    no threshold applies to it)."""
    taxonomy = policy.resolved_taxonomy
    known = set(taxonomy.ids)
    for result in results:
        for category in result.categories:
            if category not in known:
                raise _UnknownCategory(category, taxonomy.name)


_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def _unchecked(error: Exception) -> str:
    """What a verdict says about a failed check: ``classifier timeout``, or ``classifier error``
    with the error's type and message, URLs (internal endpoints) replaced by ``<url>``."""
    if isinstance(error, ClassifierTimeout):
        return "classifier timeout"
    message = _URL.sub("<url>", str(error))
    return f"classifier error ({type(error).__name__}: {message})"


def _decided(verdict: Verdict | None) -> tuple[str, ...]:
    return verdict.decided_by if verdict is not None else ()


def _bad_sample(value: object) -> Sample:
    raise TypeError(f"expected a Sample, got {type(value).__name__}")


def _samples(
    texts: Sequence[str],
    role: Role,
    prompts: Sequence[str | None] | None,
    languages: Sequence[str | None] | None,
) -> list[Sample]:
    if isinstance(texts, str | bytes):
        raise TypeError("texts must be a sequence of str, not a single str; use check_prompt")
    texts = list(texts)
    for name, seq in (("prompts", prompts), ("languages", languages)):
        if seq is not None and len(seq) != len(texts):
            raise ValueError(f"{name} has {len(seq)} items for {len(texts)} texts")
    return [
        Sample(t, role, prompts[i] if prompts else None, languages[i] if languages else None)
        for i, t in enumerate(texts)
    ]


def _language_of(sample: Sample) -> tuple[str, float | None]:
    if sample.language:
        return normalize_language(sample.language), None
    if not sample.text.strip():
        return UNDETERMINED, 0.0
    return detect_language(sample.text)


def _combine(
    scored: list[tuple[str | None, ScoreSet]], language: tuple[str, float | None], name: str
) -> ScoreSet:
    """Max over parts/views; the view that gave the top unsafe score is recorded."""
    top_label, top = max(scored, key=lambda item: item[1].unsafe)
    # Coverage is the text's own (and its parts' and language parts'): a text view such as a
    # decoded base64 string often reads as another language and says nothing about the text.
    coverage = combined_coverage(s.coverage for label, s in scored if not is_view_label(label))
    categories: dict[str, float] = {}
    refusals = [s.refusal for _, s in scored if s.refusal is not None]
    notes: list[str] = []
    for _, s in scored:
        for cat, value in s.categories.items():
            categories[cat] = max(categories.get(cat, 0.0), value)
        notes.extend(n for n in s.notes if n not in notes)
    return ScoreSet(
        unsafe=top.unsafe,
        categories=categories,
        refusal=max(refusals) if refusals else None,
        language=_reported(top.language) or _reported(language[0]),
        language_confidence=language[1]
        if top.language_confidence is None
        else top.language_confidence,
        coverage=coverage,
        classifier=top.classifier or name,
        version=top.version,
        stage=top.stage,
        view=top_label if top_label and not top_label.startswith("part:") else top.view,
        notes=tuple(notes),
    )


def _reported(code: str | None) -> str | None:
    """A language code as verdicts report it: None when it could not be told (``und``)."""
    return None if code is None or code == UNDETERMINED else code


def _plain_verdict(
    policy: Policy,
    sample: Sample,
    language: tuple[str, float | None],
    action: Action,
    decided_by: str,
    note: str,
) -> Verdict:
    return Verdict(
        action=action,
        role=sample.role,
        scores=ScoreSet(
            unsafe=0.0,
            language=_reported(language[0]),
            language_confidence=language[1],
            classifier=policy.classifier.name,
        ),
        decided_by=(decided_by,),
        language=_reported(language[0]),
        language_confidence=language[1],
        classifier=policy.classifier.name,
        policy=policy.name,
        policy_hash=policy.content_hash,
        notes=(note,),
    )
