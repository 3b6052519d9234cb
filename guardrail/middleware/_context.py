"""Options of the middleware and the checks it runs (one batched classifier call per side)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from guardrail.errors import ConfigError, ContentBlocked
from guardrail.middleware._objects import GuardReport
from guardrail.middleware._texts import Extracted, Piece
from guardrail.streaming import StreamModerator
from guardrail.types import Role, Sample, Verdict

if TYPE_CHECKING:
    from guardrail.guard import Guard

__all__ = ["Context", "WrapOptions"]

OnVerdict = Callable[[Verdict, str], None]


@dataclass(frozen=True, kw_only=True)
class WrapOptions:
    """How a wrapped client or protected function behaves. Independent of the policy.

    Attributes:
        on_block: ``raise`` (``ContentBlocked``) or ``refuse`` (a normal result carrying the
            policy's refusal message, ``finish_reason="content_filter"``).
        prompt_messages: which messages form the prompt side: ``last_user`` (default; the
            conversation before it is the context), ``user`` (every user message) or ``all``.
        untrusted_roles: message roles always checked as untrusted input, wherever they are
            (tool results and retrieved documents, where prompt injection hides).
        check_every: characters of new streamed text between checks.
        at_sentences: place stream checks at sentence ends.
        on_verdict: called with ``(verdict, stage)``; stages ``pre_call``, ``post_call`` and
            ``stream_chunk``.
        allow_unguarded: top-level client attributes (e.g. ``"batches"``) to pass through
            unchecked on purpose; by default everything that can reach a model is moderated
            or refused.
    """

    on_block: Literal["raise", "refuse"] = "raise"
    prompt_messages: Literal["last_user", "user", "all"] = "last_user"
    untrusted_roles: tuple[str, ...] = ("tool", "function")
    check_every: int = 200
    at_sentences: bool = True
    on_verdict: OnVerdict | None = None
    allow_unguarded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.on_block not in ("raise", "refuse"):
            raise ConfigError(f"on_block must be 'raise' or 'refuse', not {self.on_block!r}")
        if self.prompt_messages not in ("last_user", "user", "all"):
            raise ConfigError(
                "prompt_messages must be 'last_user', 'user' or 'all', "
                f"not {self.prompt_messages!r}"
            )
        if self.check_every < 1:
            raise ConfigError(f"check_every must be at least 1, not {self.check_every}")
        if isinstance(self.untrusted_roles, str) or isinstance(self.allow_unguarded, str):
            raise ConfigError("untrusted_roles and allow_unguarded take a sequence of names")
        object.__setattr__(self, "untrusted_roles", tuple(self.untrusted_roles))
        object.__setattr__(self, "allow_unguarded", tuple(self.allow_unguarded))

    @classmethod
    def build(cls, options: dict[str, Any]) -> WrapOptions:
        """Options from keyword arguments, with a clear error for an unknown name.

        Raises:
            ConfigError: an unknown option or a bad value.
        """
        known = sorted(f.name for f in fields(cls))
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; known options: {', '.join(known)}")
        return cls(**options)


@dataclass(frozen=True)
class Context:
    """A guard and the options: runs checks, reports verdicts, applies the block mode."""

    guard: Guard
    options: WrapOptions

    @property
    def untrusted(self) -> frozenset[str]:
        return frozenset(self.options.untrusted_roles)

    @property
    def refusal_message(self) -> str:
        return self.guard.policy.refusal_message

    @property
    def refuse(self) -> bool:
        return self.options.on_block == "refuse"

    def report(self, verdict: Verdict, stage: str) -> None:
        if self.options.on_verdict is not None:
            self.options.on_verdict(verdict, stage)

    def moderator(self, prompt: str | None) -> StreamModerator:
        return StreamModerator(
            self.guard,
            prompt=prompt,
            check_every=self.options.check_every,
            at_sentences=self.options.at_sentences,
            on_verdict=self.options.on_verdict,
        )

    # -- checks ----------------------------------------------------------------------------

    def check_prompt(self, extracted: Extracted, report: GuardReport) -> Verdict:
        """Check the prompt side; reports ``pre_call``; raises on a block unless refusing."""
        samples = _samples([extracted], Role.PROMPT, None)
        verdicts = self.guard.check(samples) if samples else []
        return self._prompt_done(extracted, verdicts, report)

    async def acheck_prompt(self, extracted: Extracted, report: GuardReport) -> Verdict:
        samples = _samples([extracted], Role.PROMPT, None)
        verdicts = await self.guard.acheck(samples) if samples else []
        return self._prompt_done(extracted, verdicts, report)

    def check_choices(
        self, groups: Sequence[Extracted], prompt: str | None, report: GuardReport
    ) -> list[Verdict]:
        """Check each response choice (one batch); reports ``post_call``; raises on a block
        unless refusing."""
        samples = _samples(groups, Role.RESPONSE, prompt)
        verdicts = self.guard.check(samples) if samples else []
        return self._choices_done(groups, verdicts, report)

    async def acheck_choices(
        self, groups: Sequence[Extracted], prompt: str | None, report: GuardReport
    ) -> list[Verdict]:
        samples = _samples(groups, Role.RESPONSE, prompt)
        verdicts = await self.guard.acheck(samples) if samples else []
        return self._choices_done(groups, verdicts, report)

    def _prompt_done(
        self, extracted: Extracted, verdicts: list[Verdict], report: GuardReport
    ) -> Verdict:
        verdict = self._combine(extracted, verdicts, Role.PROMPT)
        report.prompt = verdict
        self.report(verdict, "pre_call")
        if verdict.blocked and not self.refuse:
            raise ContentBlocked(verdict, stage="pre_call")
        return verdict

    def _choices_done(
        self, groups: Sequence[Extracted], verdicts: list[Verdict], report: GuardReport
    ) -> list[Verdict]:
        out, start = [], 0
        for index, group in enumerate(groups):
            mine = verdicts[start : start + len(group.pieces)]
            start += len(group.pieces)
            verdict = self._combine(group, mine, Role.RESPONSE)
            report.choices[index] = verdict
            self.report(verdict, "post_call")
            out.append(verdict)
        blocked = [v for v in out if v.blocked]
        if blocked and not self.refuse:
            raise ContentBlocked(blocked[0], stage="post_call")
        return out

    def _combine(self, extracted: Extracted, verdicts: list[Verdict], role: Role) -> Verdict:
        pieces = extracted.pieces
        if not verdicts:
            # Nothing textual to check: an explicit allow, with the notes saying why.
            verdicts = self.guard.check([Sample("", role)])
            pieces = [Piece("", "no text")]
        top = max(range(len(verdicts)), key=lambda i: verdicts[i].action.severity)
        notes = list(verdicts[top].notes)
        if len(pieces) > 1:
            notes.append(f"checked {len(pieces)} texts; decided on {pieces[top].label}")
        else:
            notes.append(f"checked {pieces[0].label}")
        notes += extracted.notes
        return verdicts[top].with_updates(notes=tuple(notes))


def _samples(groups: Sequence[Extracted], role: Role, prompt: str | None) -> list[Sample]:
    return [
        Sample(p.text, role, p.context if role is Role.PROMPT else prompt)
        for group in groups
        for p in group.pieces
    ]
