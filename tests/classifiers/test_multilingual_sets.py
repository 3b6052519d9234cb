"""The benchmark's multilingual sets (benchmarks/data/): requests, direct requests and refusals.

They are generalisation tests: 128 requests and 60 direct requests with their benign twins (19
languages) and 24 chatbot answers (15 languages) written for the project, each in every one of
its languages, that no head is trained on. These
tests keep them that way (well formed, parallel, not among the training seeds) and check that
the figures in benchmarks/results/accuracy.json are those of the shipped head.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from guardrail import Guard
from guardrail._data import Row, normalise_text, read_rows
from guardrail.classifiers.embedded import ENCODER_LANGUAGES
from guardrail.classifiers.embedded._labels import CATEGORY_HEADS, UNTRAINED
from guardrail.classifiers.embedded._train import seed_rows
from guardrail.types import Action

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = ROOT / "benchmarks" / "data" / "requests_multilingual.jsonl"
REFUSALS = ROOT / "benchmarks" / "data" / "refusals_multilingual.jsonl"
DIRECT = ROOT / "benchmarks" / "data" / "requests_direct.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "accuracy.json"
LANGUAGES = {*ENCODER_LANGUAGES, "el", "hi", "ro", "vi"}


@pytest.fixture(scope="module")
def rows():
    return read_rows(REQUESTS)


def _groups(rows: list[Row]) -> dict[str, list[Row]]:
    """The rows of a parallel set by their id without its language suffix."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        groups[r.id.rsplit(":", 1)[0]].append(r)
    return groups


def _check_translated(key: str, members: list[Row], languages: set[str]) -> None:
    """One text in each of ``languages``, ids ending with the language, none left in English."""
    assert {r.lang for r in members} == languages, key
    assert len(members) == len(languages), key
    assert all(r.id.endswith(f":{r.lang}") for r in members), key
    english = next(r.text for r in members if r.lang == "en")
    assert all(r.text != english for r in members if r.lang != "en"), key


def test_every_request_in_every_language_with_one_label(rows):
    for r in rows:
        assert r.role == "prompt" and r.text.strip()
    groups = _groups(rows)
    assert len(groups) == 128
    for key, members in groups.items():
        _check_translated(key, members, LANGUAGES)
        assert len({r.unsafe for r in members}) == 1, key
        assert len({tuple(r.categories) for r in members}) == 1, key
        assert members[0].unsafe == key.startswith("requests:unsafe:")
    assert sum(r.unsafe for r in rows) == sum(not r.unsafe for r in rows)


@pytest.mark.parametrize("path", [REQUESTS, DIRECT])
def test_categories_are_trained_taxonomy_categories(path):
    for r in read_rows(path):
        for c in r.categories:
            assert c in CATEGORY_HEADS and c not in UNTRAINED, (r.id, c)
        if not r.unsafe:
            assert not r.categories


def test_refusal_set_is_parallel_and_labelled():
    rows = read_rows(REFUSALS)
    for r in rows:
        assert r.role == "response" and not r.unsafe and r.text.strip()
    groups = _groups(rows)
    assert len(groups) == 24
    for key, members in groups.items():
        assert {r.lang for r in members} == set(ENCODER_LANGUAGES), key
        refusal = key.startswith("refusals:refusal:")
        assert all(("refusal" in r.categories) == refusal for r in members), key


def test_direct_requests_come_in_harmful_and_benign_twins_in_every_language():
    rows = read_rows(DIRECT)
    for r in rows:
        assert r.role == "prompt" and r.text.strip() and r.source == "requests_direct"
    groups = _groups(rows)
    assert len(groups) == 60
    for key, members in groups.items():
        kind, number = key.split(":")[1:]
        twin = groups[f"direct:{'benign' if kind == 'unsafe' else 'unsafe'}:{number}"]
        _check_translated(key, members, LANGUAGES)
        assert {r.lang for r in twin} == LANGUAGES, key
        assert all(r.unsafe == (kind == "unsafe") for r in members), key
        assert all(bool(r.categories) == r.unsafe for r in members), key


def test_not_among_the_training_seeds(rows):
    trained = {normalise_text(r.text) for r in seed_rows()}
    written = [*rows, *read_rows(REFUSALS), *read_rows(DIRECT)]
    assert not trained & {normalise_text(r.text) for r in written}


@pytest.mark.skipif(not RESULTS.exists(), reason="run benchmarks/accuracy.py first")
@pytest.mark.parametrize(
    ("path", "key"), [(REQUESTS, "multilingual_requests"), (DIRECT, "direct_requests")]
)
def test_benchmark_figures_are_the_shipped_heads(path, key):
    """The "all covered" recall and FPR in accuracy.json, recomputed through the default policy."""
    expected = json.loads(RESULTS.read_text(encoding="utf-8")).get(key)
    if expected is None:
        pytest.fail(f"benchmarks/results/accuracy.json has no {key}: re-run it")
    covered = [r for r in read_rows(path) if r.lang in ENCODER_LANGUAGES]
    verdicts = Guard.from_policy("default").check_many([r.text for r in covered])
    y = np.array([r.unsafe for r in covered])
    pred = np.array([v.action is not Action.ALLOW for v in verdicts])
    figures = expected["all covered"]["new"]
    assert pred[y].mean() == pytest.approx(figures["recall"], abs=0.01)
    assert pred[~y].mean() == pytest.approx(figures["fpr"], abs=0.01)
