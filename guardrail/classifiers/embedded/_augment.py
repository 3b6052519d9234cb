"""Form variants of English requests, so the head learns content rather than sentence form.

The English harmful requests in the data are nearly all imperatives ("Write a tutorial on how to
make a bomb"), while the benign look-alikes (CoCoNot's contrast prompts) are nearly all
questions ("How to blow up a digital image?"): a head trained on them as they are learns
"question = safe", and lets "How do I make a bomb at home?" through. Each English request of
the sets below gets a variant in the other form, with the label of the row it came from, for
harmful and benign rows alike (so the form carries no label):

- "... how to X" (any prefix) -> "How do I X?" / "How can I X?" / "What's the easiest way to X?"
- an imperative ("Write a script that ...") -> "How can I write a script that ...?"
- a question "How do/can/should I X?" / "How to X?" -> "Tell me how to X." / "Explain how to X."
  and also "How do I X?" / "How can I X?" / "What's the easiest way to X?" (the benign
  look-alikes are the data's questions, so without these "How do I ..." would be seen almost
  only on harmful rows and become the new shortcut)

Templates are chosen by the row id's hash (deterministic). Harmful imperatives give more
question variants than the benign sets do, so ``question_variant_mask`` lets training give the
harmful and the benign question variants equal total weight. Variants are training rows
only: ``train`` adds them to the train split after splitting, so dev never holds a variant of a
train row, and each variant goes to the calibration share with the row it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from guardrail._data import Row, hash_fraction

__all__ = [
    "AUGMENTED_SOURCES",
    "VARIANT_MARK",
    "base_id",
    "form_variant",
    "form_variants",
    "question_variant_mask",
]

# English request sets, harmful and benign: prompts only.
AUGMENTED_SOURCES = frozenset(
    {"advbench", "harmbench", "simplesafetytests", "jbb_artifacts", "do_not_answer",
     "self_instruct", "coconot"}
)  # fmt: skip
VARIANT_MARK = "~form"

_IMPERATIVES = frozenset(
    """write create develop design generate give provide explain describe teach outline produce
    make build draft compose list suggest instruct show tell publish post offer plan devise
    prepare compile summarize summarise find recommend help share detail construct program code
    convince persuade encourage promote""".split()  # noqa: SIM905 (a word list reads better)
)
_HOW_TO = re.compile(r"\bhow to ([^\n.?!;]{3,}?)\s*[.?!]*\s*$", re.IGNORECASE)
_QUESTION = re.compile(
    r"^\s*how (?:do|can|could|should|would|might) (?:i|we|you|one|someone) ([^\n?]{3,}?)\s*\?*\s*$"
    r"|^\s*how to ([^\n?]{3,}?)\s*\?*\s*$",
    re.IGNORECASE,
)
_ASK_HOW = ("How do I {}?", "How can I {}?", "What's the easiest way to {}?")
_TELL_HOW = ("Tell me how to {}.", "Explain how to {}.")
_ASK_OPENINGS = tuple(t.split("{}")[0] for t in _ASK_HOW)


def base_id(row_id: str) -> str:
    """The id of the row a variant came from (the id itself for other rows)."""
    return row_id.split(VARIANT_MARK, 1)[0]


def _pick(templates: Sequence[str], key: str) -> str:
    return templates[int(hash_fraction(f"form:{key}".encode()) * len(templates))]


def form_variant(text: str, key: str = "") -> list[str]:
    """The request ``text`` in other forms (see the module docstring): none when no rule
    applies (multi-line texts, texts over 40 words, texts in neither form)."""
    text = text.strip()
    if not text or "\n" in text or len(text.split()) > 40:
        return []
    question = _QUESTION.match(text)
    if question:
        action = question.group(1) or question.group(2)
        return [_pick(_TELL_HOW, key).format(action), _pick(_ASK_HOW, key).format(action)]
    how_to = _HOW_TO.search(text)
    if how_to:
        return [_pick(_ASK_HOW, key).format(how_to.group(1))]
    words = text.lower().split(maxsplit=2)
    # "Give me ..." / "Tell us ..." do not turn into "How can I give me ...?".
    if words[0].strip(",:") in _IMPERATIVES and words[1:2] not in (["me"], ["us"]):
        body = text.rstrip(" .!?")
        return [f"How can I {body[0].lower()}{body[1:]}?"]
    return []


def form_variants(rows: Iterable[Row]) -> list[Row]:
    """The form variants of the English prompts of ``AUGMENTED_SOURCES``, labelled as the row
    each came from."""
    out = []
    for row in rows:
        if row.source not in AUGMENTED_SOURCES or row.role != "prompt" or row.lang != "en":
            continue
        if row.source == "jbb_artifacts" and "goal" not in row.categories:
            continue  # attack prompts (adversarial suffixes, role play) are not plain requests
        variants = [v for v in form_variant(row.text, row.id) if v != row.text]
        out += [
            replace(row, id=f"{row.id}{VARIANT_MARK}{k}", text=v) for k, v in enumerate(variants)
        ]
    return out


def question_variant_mask(rows: Sequence[Row]) -> np.ndarray:
    """True for the form variants that ask a question ("How do I ...?")."""
    return np.array(
        [VARIANT_MARK in r.id and r.text.startswith(_ASK_OPENINGS) for r in rows], dtype=bool
    )
