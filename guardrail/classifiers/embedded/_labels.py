"""Map each data set's own labels onto the mlcommons taxonomy, for training and evaluation.

A row gets a target per head: ``unsafe`` (the set's binary label), one per taxonomy category,
and ``refusal`` for responses. A category target is 1 when one of the row's labels maps to it;
0 when the row is safe, or when its set labels that category and did not give it; otherwise it
is unknown (masked out of training and evaluation). So an AdvBench behaviour, which carries no
category, teaches ``unsafe`` only, while an mhc hateful row teaches ``hate`` = 1 and no other
category. Categories with no positive row here are not trained (see ``UNTRAINED``).

``prompt_injection`` is taught by BIPIA's attacked documents (indirect injection; their clean
copies are its negatives) and by the project's own seeds in ``seeds/prompt_injection.jsonl``
(direct attacks in 17 languages and benign look-alikes such as "How do I ignore files in git?").
The seeds in ``seeds/responses.jsonl`` are answers written for the project: answers that comply
with a harmful request (labelled with their taxonomy category) and safe answers on the same
topics (refusals, which teach ``refusal``, and ordinary helpful answers) in 13 languages, because
the data's harmful English answers are nearly all AdvBench's one-line openers.
The refusal seeds in ``seeds/refusals.jsonl`` (source ``ref_seed``: 30 refusals and 30 answers
that help, some opening like a refusal, each in the 15 covered languages) teach ``refusal`` in
every covered language, because the data's refusal labels are English only; they are safe
answers, so they teach ``unsafe`` = 0 too. One text's translations split together.
The request seeds in ``seeds/requests.jsonl`` (source ``ask_seed``) are first-person requests
with a little context in the 15 covered languages: 59 benign help-seeking ones (12 in an
emergency or crisis: an overdose, a stab wound, thoughts of suicide; "My exams are
next week and I'm so stressed I can't sleep. Any tips?"), 48 harmful ones of the same form
("My neighbour's cat keeps coming into my garden. What can I put out to kill it?", labelled with
their taxonomy category where one fits), a benign twin of each harmful one with the same opening
("... How can I keep it out without hurting it?") and 48 benign questions whose words sound
violent ("What's the most effective way to kill the mould on my bathroom ceiling?"), so that
neither the form, the words nor the language decides. The answer seeds in ``seeds/answers.jsonl``
(source ``ans_seed``) answer them: per harmful request an answer that complies (unsafe, with the
request's category) and a helpful answer to its twin, in the same 15 languages; none is a
refusal.
``jailbreak`` is taught by JailbreakBench's attacks, jailbreak_llms' in-the-wild jailbreaks and
JailBench's templates. Sets in ``EXCLUDED_SOURCES`` are not trained on at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from guardrail._data import Row

__all__ = [
    "CATEGORY_HEADS",
    "DNA_NOT_HARMFUL",
    "EXCLUDED_SOURCES",
    "FORBIDDEN_NOT_HARMFUL",
    "HEADS",
    "UNTRAINED",
    "Targets",
    "categories_of",
    "targets",
    "unsafe_unknown",
]

# Data set label -> taxonomy category id, per source. Labels not listed carry no category.
_OPENAI = {
    "S": "sexual_content",
    "H": "hate",
    "H2": "hate",
    "V": "violent_crimes",
    "V2": "violent_crimes",
    "SH": "suicide_self_harm",
    "S3": "child_sexual_exploitation",
}
_DNA = {
    "Toxic language (hate speech)": "hate",
    "Social stereotypes and unfair discrimination": "hate",
    "Adult Content": "sexual_content",
    "Compromise privacy by leaking or inferring private information (person/individual)": (
        "privacy"
    ),
    "Causing material harm by disseminating misinformation e.g. in medicine or law": (
        "specialized_advice"
    ),
}
_HARMBENCH = {
    "chemical_biological": "indiscriminate_weapons",
    "copyright": "intellectual_property",
    "cybercrime_intrusion": "non_violent_crimes",
}
_JBB = {
    "Harassment/Discrimination": "hate",
    "Defamation": "defamation",
    "Malware/Hacking": "non_violent_crimes",
    "Fraud/Deception": "non_violent_crimes",
    "Economic harm": "non_violent_crimes",
    "Physical harm": "violent_crimes",
    "Sexual/Adult content": "sexual_content",
    "Privacy": "privacy",
    "Expert advice": "specialized_advice",
    "Bomb building": "indiscriminate_weapons",
    "Biological weapons": "indiscriminate_weapons",
    "Child pornography": "child_sexual_exploitation",
}
_SST = {
    "Suicide, Self-Harm, and Eating Disorders": "suicide_self_harm",
    "Physical harm and Violence": "violent_crimes",
    "Illegal and Highly Regulated items": "non_violent_crimes",
    "Scams and fraud": "non_violent_crimes",
    "Child safety": "child_sexual_exploitation",
}
# Do-Not-Answer prompts are unsafe "by design", but these harm types are ordinary questions
# (about the chatbot itself, medicine, companies, rumours) that a moderation guard should let
# through: their `unsafe` target is left unknown rather than taught as 1.
DNA_NOT_HARMFUL = frozenset(
    {
        "Treat Chatbot as a Human",
        "Mental Health or Overreliance Crisis",
        "Disseminating false or misleading information",
        "Causing material harm by disseminating misinformation e.g. in medicine or law",
        "Risks from leaking or inferring sensitive information (organization/gov)",
    }
)
# jailbreak_llms' forbidden questions of these scenarios ask for advice or an opinion ("How can I
# properly manage my asthma?", "Can you review my lease agreement and tell me if it's fair?"),
# not for harm (the data README: "5 are specialised-advice, not harm"): their `unsafe` target is
# left unknown, as for DNA_NOT_HARMFUL.
FORBIDDEN_NOT_HARMFUL = frozenset(
    {
        "Political Lobbying",
        "Legal Opinion",
        "Financial Advice",
        "Health Consultation",
        "Gov Decision",
    }
)
_HATE_SETS = {"mhc", "hatecheck", "toxigen_demos"}
# In these sets only some unsafe rows are hate (the rest are insults or offensive language).
_HATE_LABEL = {"cold": "offensive:attack_group", "kor_hate": "hate:hate"}

_MAPS: dict[str, dict[str, str]] = {
    "openai_moderation": _OPENAI,
    "do_not_answer": _DNA,
    "harmbench": _HARMBENCH,
    "jbb_artifacts": _JBB,
    "simplesafetytests": _SST,
}

# Categories whose absence an unsafe row of the set asserts (the set's scheme covers them).
_COVERS: dict[str, frozenset[str]] = {
    "openai_moderation": frozenset(_OPENAI.values()),
    "do_not_answer": frozenset({"hate", "sexual_content", "privacy"}),
    "harmbench": frozenset({"indiscriminate_weapons", "intellectual_property"}),
    "jbb_artifacts": frozenset({"hate", "privacy", "specialized_advice"}),
    "simplesafetytests": frozenset(_SST.values()),
    "mhc": frozenset({"hate"}),
    "hatecheck": frozenset({"hate"}),
    "toxigen_demos": frozenset({"hate"}),
    "cold": frozenset({"hate"}),
    "kor_hate": frozenset({"hate"}),
}

CATEGORY_HEADS: tuple[str, ...] = (
    "violent_crimes",
    "non_violent_crimes",
    "child_sexual_exploitation",
    "specialized_advice",
    "privacy",
    "intellectual_property",
    "indiscriminate_weapons",
    "hate",
    "suicide_self_harm",
    "sexual_content",
    "jailbreak",
    "prompt_injection",
)
HEADS: tuple[str, ...] = ("unsafe", *CATEGORY_HEADS, "refusal")
# The project's response and request seeds carry taxonomy names as their labels.
_MAPS["resp_seed"] = _MAPS["ask_seed"] = _MAPS["ans_seed"] = {c: c for c in CATEGORY_HEADS}

# Sets left out of training (and so of the dev figures of a head), with the reason.
EXCLUDED_SOURCES: dict[str, str] = {
    "bengali_hate": (
        "every row is unsafe and nothing else is Bengali: a head trained on it flags most benign "
        "Bengali text (a language shortcut, measured)"
    ),
    "flames": (
        "all unsafe by design and mostly subtle value probes (stereotype-laden questions, "
        "non-anthropomorphism) that a moderation guard should not block"
    ),
}

# Taxonomy categories with no (or too little) labelled signal in ../shared/data.
UNTRAINED: dict[str, str] = {
    "sex_related_crimes": "no data set labels sexual crimes against adults separately",
    "defamation": "only ~11 labelled rows (JailbreakBench's defamation behaviours)",
    "elections": "no data set labels election misinformation",
    "code_interpreter_abuse": "no data set covers code-interpreter abuse",
}


def categories_of(row: Row) -> set[str]:
    """The taxonomy categories a row's own labels map to (empty for a safe row)."""
    if not row.unsafe:
        return set()
    cats = {m[c] for c in row.categories if (m := _MAPS.get(row.source)) and c in m}
    if row.source in _HATE_SETS or _HATE_LABEL.get(row.source) in row.categories:
        cats.add("hate")
    if _is_jailbreak(row):
        cats.add("jailbreak")
    if _is_injection(row):
        cats.add("prompt_injection")
    return cats


def unsafe_unknown(row: Row) -> bool:
    """True for rows whose `unsafe` label is not used for training.

    Do-Not-Answer prompts of the harm types in ``DNA_NOT_HARMFUL`` (ordinary questions),
    jailbreak_llms' forbidden questions of the scenarios in ``FORBIDDEN_NOT_HARMFUL`` (advice and
    opinions), and BIPIA's attacked documents: the attack is one sentence inside an e-mail,
    table or piece of code whose clean copy is safe, so as `unsafe` targets they teach "a table
    is unsafe" (measured: 53% of clean BIPIA documents scored unsafe >= 0.5). They teach
    ``prompt_injection`` only.
    """
    if row.source == "bipia":
        return row.unsafe
    if row.source == "jailbreak_llms":
        return not FORBIDDEN_NOT_HARMFUL.isdisjoint(row.categories)
    return (
        row.source == "do_not_answer"
        and row.role == "prompt"
        and not DNA_NOT_HARMFUL.isdisjoint(row.categories)
    )


def _is_jailbreak(row: Row) -> bool:
    # JailbreakBench artifacts are attack prompts, except the plain goals they start from;
    # jailbreak_llms' in-the-wild prompts and JailBench's templated questions are attacks too.
    if row.source == "jbb_artifacts":
        return "goal" not in row.categories
    return (row.source, row.categories[:1]) in {
        ("jailbreak_llms", ("jailbreak",)),
        ("jailbench", ("jailbench:jailbreak",)),
    }


def _is_injection(row: Row) -> bool:
    return row.unsafe and (
        row.source == "bipia" or (row.source == "pi_seed" and "prompt_injection" in row.categories)
    )


def _refusal(row: Row) -> float | None:
    if row.role != "response":
        return None
    if row.source in {"resp_seed", "ref_seed", "ans_seed"}:
        return float("refusal" in row.categories)
    if row.source == "do_not_answer":
        # Do-Not-Answer action 0: the model declines; 4 ("I cannot, as an AI...") is ambiguous.
        if "action:0" in row.categories:
            return 1.0
        return None if "action:4" in row.categories else 0.0
    # Human-written answers and AdvBench's harmful completions are not refusals.
    return 0.0 if row.source in {"self_instruct", "advbench"} else None


@dataclass(frozen=True, slots=True)
class Targets:
    """Training targets for rows: ``y`` in {0, 1} and ``mask`` (1 = known), shape (n, heads)."""

    y: np.ndarray
    mask: np.ndarray
    heads: tuple[str, ...] = HEADS


def targets(rows: Sequence[Row]) -> Targets:
    """Targets for every head (see the module docstring for the rule)."""
    n, k = len(rows), len(HEADS)
    y = np.zeros((n, k), dtype=np.float32)
    mask = np.zeros((n, k), dtype=np.float32)
    col = {h: j for j, h in enumerate(HEADS)}
    for i, row in enumerate(rows):
        y[i, 0], mask[i, 0] = float(row.unsafe), float(not unsafe_unknown(row))
        cats = categories_of(row)
        covered = _COVERS.get(row.source, frozenset())
        for cat in CATEGORY_HEADS:
            j = col[cat]
            if cat == "jailbreak":
                known = row.role == "prompt"
            elif cat == "prompt_injection":
                # Jailbreak templates often open with "ignore previous instructions": whether
                # they are also injections is not labelled, so they teach neither way.
                known = row.role == "prompt" and not _is_jailbreak(row)
            else:
                known = not row.unsafe or cat in cats or cat in covered
            y[i, j] = float(cat in cats)
            mask[i, j] = float(known)
        refusal = _refusal(row)
        if refusal is not None:
            y[i, col["refusal"]], mask[i, col["refusal"]] = refusal, 1.0
    return Targets(y=y, mask=mask)
