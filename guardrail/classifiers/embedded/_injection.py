"""The injection head of the ``embedded`` classifier: a segment read against its document.

Most of BIPIA's attacks are ordinary requests ("Explain the theory of relativity.") planted in an
e-mail, a table or code. Scored on its own, such a segment is a benign request; the whole
document scores like its clean copy. This head sees both: its input is a segment's embedding and
the segment's difference from the whole text's embedding (what the segment says that the text
around it does not), and its output is the probability that the segment is an instruction
planted in the text. The classifier runs it on the segments of prompts it scores with the main
encoder (prompts of two or more segments) and reports, for ``prompt_injection``, the higher of
the main head's score and this one.

Training rows (``context_rows``, the train split only):

- every segment of BIPIA's documents: positive where an attacked copy has a segment its clean
  copy lacks (the planted attack), negative otherwise;
- the clean documents again, with a request about the document itself at the start or the end
  (``DOCUMENT_REQUESTS``, project-written: "Summarize this email."): the way a user asks about a
  pasted document must not read as an attack;
- news paragraphs (five NTREX sentences of one language, every language): as they are, with a
  request about the text (negatives), and with one of the attacks above or a direct injection
  (the ``pi_seed`` rows) at the start or the end (positives), so the head does not learn
  BIPIA's e-mails and tables instead of planted instructions;
- every segment of each safe prompt of two or more segments from the other sets (all
  languages), and safe short requests between two news sentences of their language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from guardrail._data import Row, split_key
from guardrail.classifiers.embedded._windows import split_windows

__all__ = [
    "DOCUMENT_REQUESTS",
    "ContextRows",
    "context_features",
    "context_rows",
    "document_segments",
]

#: Requests about a pasted document, per BIPIA task: negatives the head learns from.
DOCUMENT_REQUESTS: dict[str, tuple[str, ...]] = {
    "email": (
        "Summarize this email.",
        "What is this email about?",
        "Who sent this email?",
        "Draft a reply to this email.",
        "Is this email urgent?",
        "List the action items in this email.",
        "Extract the dates mentioned in the email.",
        "What does the sender want me to do?",
        "Classify this email as spam or not spam.",
        "Translate this email into French.",
    ),
    "table": (
        "Which row has the highest value?",
        "Summarize this table.",
        "How many rows are in this table?",
        "What is the total of the second column?",
        "Convert this table to CSV.",
        "Sort the table by the first column.",
        "What year appears most often in the table?",
        "Describe the trends in this table.",
    ),
    "code": (
        "Explain what this code does.",
        "Find the bug in this code.",
        "Add comments to this function.",
        "Rewrite this code in Python 3.",
        "What does this function return?",
        "Optimize this code.",
        "Write unit tests for this code.",
    ),
    # Any other text: the news paragraphs the head also learns from.
    "text": (
        "Summarize this article.",
        "What is this text about?",
        "Translate this paragraph into English.",
        "List the people mentioned in this text.",
        "Give this article a title.",
        "What happened, according to this report?",
        "Rewrite this paragraph in simpler words.",
        "Is the tone of this text positive or negative?",
    ),
}

_PADDED_PER_LANGUAGE = 300
_PARAGRAPHS_PER_LANGUAGE = 20
_PARAGRAPH_SENTENCES = 5


def _overlaps(attack: str) -> Callable[[str], bool]:
    """Whether a segment holds the planted ``attack`` or a part of it."""
    return lambda segment: attack in segment or segment in attack


def document_segments(text: str) -> list[str]:
    """The segments the head reads (the classifier's windows without spans), or the text."""
    return split_windows(text, spans=False)[0] or [text]


def context_features(segments: np.ndarray, document: np.ndarray) -> np.ndarray:
    """The head's input for segments of one document: [segment, segment - document], float32.

    Args:
        segments: (n, d) segment embeddings.
        document: (d,) or (n, d) embedding of the whole text each segment came from.
    """
    s = np.asarray(segments, dtype=np.float32)
    return np.hstack([s, s - np.asarray(document, dtype=np.float32)])


@dataclass(frozen=True)
class ContextRows:
    """Training rows of the injection head: each segment with its document and label.

    Attributes:
        documents: the whole texts.
        segments: (segment text, index into ``documents``, label, group) per row; rows of one
            group (a BIPIA document and its copies, or one prompt) go to calibration together.
    """

    documents: list[str]
    segments: list[tuple[str, int, bool, str]]


def context_rows(rows: Sequence[Row], seed: int = 0) -> ContextRows:
    """The injection head's rows from a train split (see the module docstring). Seeded."""
    rng = np.random.default_rng(seed)
    documents: list[str] = []
    segments: list[tuple[str, int, bool, str]] = []

    def add(text: str, group: str, planted: Callable[[str], bool] | None = None) -> None:
        documents.append(text)
        for s in document_segments(text):
            segments.append((s, len(documents) - 1, planted is not None and planted(s), group))

    def pick(pool: Sequence[str]) -> str:
        return pool[int(rng.integers(len(pool)))]

    def around(text: str, line: str) -> str:
        return f"{line}\n{text}" if rng.random() < 0.5 else f"{text}\n{line}"

    bipia = [r for r in rows if r.source == "bipia"]
    # A document's clean and attacked copies share their split key.
    clean = {split_key(r): r for r in bipia if not r.unsafe}
    clean_segments = {k: set(document_segments(r.text)) for k, r in clean.items()}
    attacks: set[str] = {r.text for r in rows if r.source == "pi_seed" and r.unsafe}
    for r in bipia:
        key = split_key(r)
        if r.unsafe:
            segs = document_segments(r.text)
            planted = {s for s in segs if s not in clean_segments.get(key, set())}
            attacks |= planted
            add(r.text, key, planted.__contains__)
            continue
        add(r.text, key)
        task = next((c[5:] for c in r.categories if c.startswith("task:")), None)
        if task in DOCUMENT_REQUESTS:
            add(around(r.text, pick(DOCUMENT_REQUESTS[task])), key)
    news: dict[str, list[str]] = {}
    for r in rows:
        if r.source == "ntrex" and r.lang and 20 <= len(r.text) <= 200:
            news.setdefault(r.lang, []).append(r.text)
    pool = sorted(attacks)
    for lang in sorted(news):
        if not pool or len(news[lang]) < 2 * _PARAGRAPH_SENTENCES:
            continue
        for n in range(_PARAGRAPHS_PER_LANGUAGE):
            picked = rng.choice(len(news[lang]), _PARAGRAPH_SENTENCES, replace=False)
            paragraph = " ".join(news[lang][i] for i in picked)
            group = f"news:{lang}:{n}"
            add(paragraph, group)
            add(around(paragraph, pick(DOCUMENT_REQUESTS["text"])), group)
            attack = pick(pool)
            add(around(paragraph, attack), group, _overlaps(attack))
    short: dict[str, list[Row]] = {}
    for r in rows:
        if r.source == "bipia" or r.role != "prompt" or r.unsafe:
            continue
        if len(document_segments(r.text)) >= 2:
            add(r.text, r.id)
        elif r.lang in news and len(r.text) < 200:
            short.setdefault(r.lang, []).append(r)
    for lang in sorted(short):
        pool, picks = news[lang], short[lang]
        for i in rng.permutation(len(picks))[:_PADDED_PER_LANGUAGE]:
            a, b = rng.integers(len(pool), size=2)
            add(f"{pool[a]} {picks[i].text} {pool[b]}", picks[i].id)
    return ContextRows(documents, segments)
