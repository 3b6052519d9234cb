"""benchmarks/draws.py: the figures of one draw and their summary over draws."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from accuracy import Run  # noqa: E402
from draws import FIGURES, main, recall_at_fpr, section_figures, summarise  # noqa: E402

from guardrail._data import Row  # noqa: E402
from guardrail.types import Action, Role, ScoreSet, Verdict  # noqa: E402


def _row(i: int, lang: str, unsafe: bool) -> Row:
    return Row(
        id=f"requests:{i}:{lang}",
        text=f"text {i}",
        role="prompt",
        prompt=None,
        lang=lang,
        unsafe=unsafe,
        categories=(),
        source="requests",
    )


def test_recall_at_fpr_counts_positives_above_the_negatives_quantile():
    y = np.array([True, True, True, True, False, False, False, False, False, False])
    score = np.array([0.9, 0.8, 0.3, 0.1, 0.85, 0.2, 0.15, 0.1, 0.05, 0.0])
    # Six negatives: at 0% the cut is the highest negative (0.85), at 50% their median (0.125).
    assert recall_at_fpr(y, score, 0.0) == pytest.approx(0.25)
    assert recall_at_fpr(y, score, 0.5) == pytest.approx(0.75)
    assert recall_at_fpr(np.array([True, True]), np.array([0.1, 0.2]), 0.1) is None


def test_section_figures_read_only_the_encoders_languages():
    rows = [_row(0, "en", True), _row(1, "en", False), _row(2, "vi", True), _row(3, "vi", False)]
    flags = [True, False, False, True]  # the Vietnamese rows are both wrong
    scores = [0.9, 0.1, 0.2, 0.8]
    verdicts = [
        Verdict(
            action=Action.FLAG if f else Action.ALLOW,
            role=Role.PROMPT,
            scores=ScoreSet(unsafe=s, categories={}),
            categories=[],
        )
        for f, s in zip(flags, scores, strict=True)
    ]
    figures = section_figures("s7", rows, Run.of(verdicts))
    assert figures == {"s7_recall": 1.0, "s7_fpr": 0.0, "s7_pr_auc": 1.0, "s7_recall_at_7": 1.0}


def test_summarise_gives_mean_sd_and_range_over_the_draws_that_have_a_figure():
    draws = {
        "seed 0": {"s7_recall": 0.5, "coconot_flagged": 0.03},
        "seed 10": {"s7_recall": 0.7, "coconot_flagged": None},
        "seed 20": {"s7_recall": 0.6},
    }
    summary = summarise(draws)
    assert summary["s7_recall"] == pytest.approx({"mean": 0.6, "sd": 0.1, "min": 0.5, "max": 0.7})
    assert summary["coconot_flagged"] == {"mean": 0.03, "sd": None, "min": 0.03, "max": 0.03}
    assert set(summary) <= set(FIGURES) and "s13_recall" not in summary


def test_main_refuses_a_missing_data_folder_and_repeated_seeds(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["--data", str(tmp_path / "absent"), "--seeds", "0"])
    assert done.value.code == 2
    assert "no data at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["--seeds", "0", "0"])
    assert done.value.code == 2
    assert "each seed once" in capsys.readouterr().err
