"""Streaming moderation: hold generated text back and release it only after a passing check.

The one implementation behind the client middleware and the proxy. It works on text, so it does
not care which tokenizer produced the deltas::

    moderator = StreamModerator(guard, prompt="Tell me a story")
    for delta in deltas:
        step = moderator.feed(delta)
        send(step.released)            # safe to show now (may be "")
        if step.blocked:
            break                      # end the stream with finish_reason="content_filter"
    else:
        step = moderator.finish()      # final check over the whole text
        send(step.released)

Every check runs over everything generated so far (as a response, with the prompt as context).
A check is due once ``check_every`` unchecked characters have accumulated; with
``at_sentences`` it waits for the end of the current sentence (so the classifier sees whole
sentences), unless that sentence alone has grown past ``max(N, LONG_SENTENCE)``. So for a
stream of L characters there are at most ``floor(L / N) + 1 <= ceil(L / N) + 1`` classifier
calls, and the text held back never exceeds one interval plus the current sentence (and stays
under ``N + max(N, LONG_SENTENCE)``). ``check_every=1`` with ``at_sentences=True`` checks at
every sentence end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guardrail.types import Action, Verdict

if TYPE_CHECKING:
    from guardrail.guard import Guard

__all__ = ["LONG_SENTENCE", "StreamModerator", "StreamStep", "sentence_ends"]

#: A sentence longer than ``max(check_every, LONG_SENTENCE)`` characters is checked without
#: waiting for its end, so text without punctuation is never held back indefinitely.
LONG_SENTENCE = 200

# A sentence ends at terminal punctuation (optionally closed by quotes or brackets) followed by
# whitespace, at a line break, or right after a full-width terminator (CJK needs no space).
_SENTENCE_END = re.compile(r"""[.!?…]+["'”’)\]]*\s+|[。！？]+["'”’」』)\]]*\s*|\n+""")


def sentence_ends(text: str, start: int = 0) -> list[int]:
    """Positions in ``text`` (at or after ``start``) just past a sentence end."""
    return [m.end() for m in _SENTENCE_END.finditer(text, start)]


@dataclass(frozen=True)
class StreamStep:
    """What one ``feed`` or ``finish`` call decided.

    Attributes:
        released: text safe to hand to the caller now (may be ``""``).
        verdict: the verdict of the check run at this step, if one ran.
        blocked: True once the stream must end with ``finish_reason="content_filter"``.
    """

    released: str
    verdict: Verdict | None
    blocked: bool


class StreamModerator:
    """Moderate one stream of generated text (one per choice when ``n > 1``).

    Args:
        guard: the guard whose policy decides.
        prompt: the prompt the response answers, given to the classifier as context.
        check_every: characters of new text between checks (N).
        at_sentences: place checks at sentence ends where possible.
        on_verdict: called with ``(verdict, stage)`` after every check; stage is
            ``stream_chunk`` for checks during the stream and ``post_call`` for the final one.

    Raises:
        ValueError: ``check_every`` is smaller than 1.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        prompt: str | None = None,
        check_every: int = 200,
        at_sentences: bool = True,
        on_verdict: Callable[[Verdict, str], None] | None = None,
    ) -> None:
        if check_every < 1:
            raise ValueError(f"check_every must be at least 1, not {check_every}")
        self.guard = guard
        self.prompt = prompt
        self.check_every = check_every
        self.at_sentences = at_sentences
        self.on_verdict = on_verdict
        self.text = ""
        self.verdicts: list[Verdict] = []
        self._checked = 0  # text[:_checked] passed a check and has been released
        self._blocked = False
        self._finished = False

    # -- state -----------------------------------------------------------------------------

    @property
    def blocked(self) -> bool:
        """True once a check blocked; nothing more is released after that."""
        return self._blocked

    @property
    def released_text(self) -> str:
        """Everything released so far."""
        return self.text[: self._checked]

    @property
    def held(self) -> int:
        """Characters received but not (yet) released."""
        return len(self.text) - self._checked

    @property
    def verdict(self) -> Verdict | None:
        """The most severe verdict so far (the last one among equals), or None before a check."""
        if not self.verdicts:
            return None
        return max(reversed(self.verdicts), key=lambda v: v.action.severity)

    # -- sync ------------------------------------------------------------------------------

    def feed(self, delta: str) -> StreamStep:
        """Add generated text; run a check when one is due.

        Raises:
            RuntimeError: the stream was already finished.
        """
        cut = self._add(delta)
        if cut is None:
            return StreamStep("", None, self._blocked)
        verdict = self.guard.check_response(self.text[:cut], self.prompt)
        return self._apply(verdict, cut, "stream_chunk")

    def finish(self) -> StreamStep:
        """Final check over all the text; releases the rest or blocks."""
        cut = self._end()
        if cut is None:
            return self._final_without_check()
        verdict = self.guard.check_response(self.text, self.prompt)
        return self._apply(verdict, cut, "post_call")

    # -- async -----------------------------------------------------------------------------

    async def afeed(self, delta: str) -> StreamStep:
        """Async ``feed``: the check runs off the event loop."""
        cut = self._add(delta)
        if cut is None:
            return StreamStep("", None, self._blocked)
        verdict = await self.guard.acheck_response(self.text[:cut], self.prompt)
        return self._apply(verdict, cut, "stream_chunk")

    async def afinish(self) -> StreamStep:
        """Async ``finish``."""
        cut = self._end()
        if cut is None:
            return self._final_without_check()
        verdict = await self.guard.acheck_response(self.text, self.prompt)
        return self._apply(verdict, cut, "post_call")

    # -- internals -------------------------------------------------------------------------

    def _add(self, delta: str) -> int | None:
        if self._finished:
            raise RuntimeError("feed() after finish(): the stream is already complete")
        if not isinstance(delta, str):
            raise TypeError(f"delta must be a str, not {type(delta).__name__}")
        self.text += delta
        if self._blocked:
            return None  # nothing is released after a block, so there is nothing to check
        return self._due()

    def _due(self) -> int | None:
        """Where the next check should end, or None when no check is due yet."""
        n, start, end = self.check_every, self._checked, len(self.text)
        if end - start < n:
            return None
        if not self.at_sentences:
            return end
        ends = sentence_ends(self.text, start)
        last = ends[-1] if ends else start
        if end - last >= max(n, LONG_SENTENCE):
            return end  # a runaway sentence: check it without waiting for its end
        if last >= start + n:
            return last  # whole sentences covering at least one interval
        return None  # wait for the current sentence to end

    def _end(self) -> int | None:
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._blocked or self._checked == len(self.text):
            return None
        return len(self.text)

    def _final_without_check(self) -> StreamStep:
        """Everything was already checked: report the standing verdict as the post-call one."""
        verdict = self.verdict
        if verdict is not None and self.on_verdict is not None:
            self.on_verdict(verdict, "post_call")
        return StreamStep("", verdict, self._blocked)

    def _apply(self, verdict: Verdict, cut: int, stage: str) -> StreamStep:
        self.verdicts.append(verdict)
        if self.on_verdict is not None:
            self.on_verdict(verdict, stage)
        if verdict.action is Action.BLOCK:
            self._blocked = True
            return StreamStep("", verdict, True)
        released = self.text[self._checked : cut]
        self._checked = cut
        return StreamStep(released, verdict, False)
