"""Guard-LLM families: what to ask the model, how to read its answer, and where its decisions are.

A family turns a sample into one or more ``Call`` s (prompts), parses each answer into a
``Parsed`` (answer words per decision field, where each word starts in the text, native
categories), and says which answer words mean yes / no for each field. The probability of a
decision is read from the model's next-token distribution at the answer word's position
(``decision_probability``), so both the transformers backend and the served backend share the
same templates, parsers and scoring.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from guardrail.errors import ClassifierError
from guardrail.taxonomy import Taxonomy
from guardrail.types import Role, Sample

UNSAFE = "unsafe"
REFUSAL = "refusal"


@dataclass(frozen=True)
class Decision:
    """The answer words of one yes/no field (lower case)."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]
    middle: tuple[str, ...] = ()
    middle_weight: float = 0.5


YES_NO = Decision(positive=("yes",), negative=("no",))


@dataclass(frozen=True)
class Call:
    """One prompt for the model.

    Either ``text`` (a complete prompt string) or ``messages`` (chat messages rendered by the
    tokenizer's chat template) is set.
    """

    key: str
    max_new_tokens: int
    text: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    add_special_tokens: bool = False


@dataclass(frozen=True)
class Parsed:
    """A parsed answer: the answer word per field, its offset in the text, native categories."""

    labels: dict[str, str]
    offsets: dict[str, int]
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallResult:
    """A call, its parsed answer and the probability of each decision field."""

    call: Call
    parsed: Parsed
    probs: dict[str, float]


@dataclass(frozen=True)
class Combined:
    """What a family makes of all its calls for one sample (native category ids)."""

    unsafe: float
    refusal: float | None = None
    categories: dict[str, float] = field(default_factory=dict)


class Family(Protocol):
    """A guard-LLM family (PolyGuard, Llama Guard, ...)."""

    name: str
    taxonomy: str | None  # native taxonomy name; None: the policy's own (rendered in the prompt)
    chat: bool  # True: calls carry chat messages (the model's chat template renders them)

    def calls(self, sample: Sample) -> list[Call]:
        """The prompts for one sample."""
        ...

    def parse(self, call: Call, text: str, role: Role) -> Parsed:
        """Read an answer; raise ``ClassifierError(raw=text)`` when it is not in the format."""
        ...

    def decisions(self, role: Role) -> dict[str, Decision]:
        """The decision fields answered for this role."""
        ...

    def combine(self, results: Sequence[CallResult]) -> Combined:
        """Scores for one sample from all its calls."""
        ...


def label_value(word: str, decision: Decision) -> float:
    """The score a parsed answer word stands for: 1, 0 or the middle weight."""
    w = word.lower()
    if w in decision.positive:
        return 1.0
    if w in decision.negative:
        return 0.0
    if w in decision.middle:
        return decision.middle_weight
    raise ValueError(f"{word!r} is not an answer word of this field")


def token_class(token: str, decision: Decision) -> str | None:
    """Which answer a token starts: ``pos``, ``neg``, ``mid``, or None (neither or ambiguous)."""
    norm = token.strip().lower()
    if not norm:
        return None
    hits = set()
    for cls, words in (("pos", decision.positive), ("neg", decision.negative)):
        for word in words:
            if word == norm or (len(norm) >= 2 and word.startswith(norm)):
                hits.add(cls)
    for word in decision.middle:
        if word == norm or (len(norm) >= 3 and word.startswith(norm)):
            hits.add("mid")
    return hits.pop() if len(hits) == 1 else None


def decision_probability(alternatives: Mapping[str, float], decision: Decision) -> float | None:
    """P(positive) among the answer tokens at one position (middle counted at its weight).

    Args:
        alternatives: candidate token text -> probability at the decision position.
        decision: the field's answer words.

    Returns:
        The renormalised probability, or None when no candidate is an answer word.
    """
    mass = {"pos": 0.0, "neg": 0.0, "mid": 0.0}
    for token, prob in alternatives.items():
        cls = token_class(token, decision)
        if cls is not None:
            mass[cls] += prob
    total = sum(mass.values())
    if total <= 0.0:
        return None
    return (mass["pos"] + decision.middle_weight * mass["mid"]) / total


def single_call_combine(results: Sequence[CallResult]) -> Combined:
    """The usual case: one call; named categories get the unsafe score."""
    result = results[0]
    unsafe = result.probs[UNSAFE]
    return Combined(
        unsafe=unsafe,
        refusal=result.probs.get(REFUSAL),
        categories={c: unsafe for c in result.parsed.categories},
    )


_KEY_VALUE = re.compile(r"^[ \t]*([A-Za-z][A-Za-z ]*?)[ \t]*:[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def key_values(text: str) -> dict[str, tuple[str, int]]:
    """``Key: value`` lines -> {lower-case key: (value, offset of the value in text)}."""
    out: dict[str, tuple[str, int]] = {}
    for match in _KEY_VALUE.finditer(text):
        key = match.group(1).lower()
        if key not in out:
            out[key] = (match.group(2), match.start(2))
    return out


def require_word(
    fields: Mapping[str, tuple[str, int]], key: str, words: Sequence[str], text: str
) -> tuple[str, int]:
    """The answer word of a required ``Key: word`` line.

    Raises:
        ClassifierError: the line is missing or its value is not one of ``words``.
    """
    if key not in fields:
        raise ClassifierError(f"answer has no {key!r} line", raw=text)
    value, offset = fields[key]
    word = value.strip().split(" ")[0].lower() if value.strip() else ""
    if word not in words:
        raise ClassifierError(
            f"unexpected {key!r} value {value!r} (expected one of {', '.join(words)})", raw=text
        )
    return word, offset


def split_codes(value: str) -> list[str]:
    """Category codes from ``S1, S10`` / ``S1 S10`` / ``None`` (an empty list for none)."""
    cleaned = value.strip()
    if not cleaned or cleaned.lower() in {"none", "n/a", "null"}:
        return []
    return [c for c in re.split(r"[,\s]+", cleaned) if c]


def conversation(sample: Sample) -> tuple[str, str | None]:
    """(user text, assistant text or None) for a sample."""
    if sample.role is Role.RESPONSE:
        return sample.context or "", sample.text
    return sample.text, None


def native_codes(taxonomy: Taxonomy, codes: Sequence[str], text: str) -> tuple[str, ...]:
    """Category ids for codes in a native taxonomy; an unknown code is a format error."""
    ids = []
    for code in codes:
        try:
            ids.append(taxonomy.by_code(code).id)
        except ValueError as e:
            raise ClassifierError(f"unknown category {code!r} in the answer", raw=text) from e
    return tuple(dict.fromkeys(ids))
