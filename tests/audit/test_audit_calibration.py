"""Calibration: per-language thresholds from labelled results lower the FPR at a fixed recall."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from guardrail.adapters.audit import AuditConfig, FieldSpec, calibrate, run_audit, write_policy

from guardrail import Guard, load_policy
from guardrail.errors import ConfigError, UnknownClassifierError
from guardrail.testing import FakeClassifier
from guardrail.types import Sample, ScoreSet
from tests.conftest import POLICIES, SHARED_DATA


def _unit(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


# Scores by language and label: German negatives score much higher than English ones, as a
# classifier trained mostly on English often does; one global threshold cannot suit both.
_RANGES = {
    ("en", False): (0.0, 0.4),
    ("en", True): (0.3, 1.0),
    ("de", False): (0.3, 0.7),
    ("de", True): (0.6, 1.0),
}


def _shifted(sample: Sample) -> ScoreSet:
    label = sample.text.startswith("pos")
    lo, hi = _RANGES[(sample.language or "en", label)]
    return ScoreSet(unsafe=lo + (hi - lo) * _unit(sample.text), language=sample.language)


def _audit_shifted(tmp_path: Path) -> Path:
    rows = [
        {
            "id": f"{lang}{i}",
            "text": f"{'pos' if i % 3 == 0 else 'neg'} {lang} {i}",
            "lang": lang,
            "y": i % 3 == 0,
        }
        for lang in ("en", "de")
        for i in range(900)
    ]
    src = tmp_path / "labelled.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scored.parquet"
    guard = Guard(
        load_policy(POLICIES / "audit_shifted.yaml"), classifier=FakeClassifier(fn=_shifted)
    )
    fields = FieldSpec(id_field="id", label_field="y", language_field="lang")
    run_audit(AuditConfig(input=src, out=out, fields=fields, progress=False), guard=guard)
    return out


def test_per_language_thresholds_meet_the_target_and_beat_one_global_threshold(tmp_path):
    out = _audit_shifted(tmp_path)
    base = load_policy(POLICIES / "audit_shifted.yaml")
    result = calibrate(out, base, objective="fpr", target_fpr=0.05, holdout=0.4, min_rows=30)
    assert result.thresholds["prompt/en"] < 0.45 < 0.6 < result.thresholds["prompt/de"]
    before, after = result.before.overall, result.after.overall
    assert before.fpr is not None and after.fpr is not None and after.recall is not None
    assert after.fpr < before.fpr
    assert after.fpr <= 0.08  # the 5 % target, measured on rows it was not fitted on
    # At the recall the calibrated policy reaches, the best single threshold has a higher FPR.
    global_fpr = result.before.fpr_at_recall(after.recall)
    assert global_fpr is not None and after.fpr < global_fpr
    assert result.calibration_rows + result.holdout_rows == 1800


def test_calibrated_policy_yaml_loads_and_applies_per_language(tmp_path):
    out = _audit_shifted(tmp_path)
    result = calibrate(out, load_policy(POLICIES / "audit_shifted.yaml"), objective="f1")
    path = tmp_path / "calibrated.yaml"
    write_policy(result.policy, path)
    guard = Guard.from_policy(path, classifier=FakeClassifier(unsafe=0.55))
    assert guard.policy.name == "audit_shifted-calibrated"
    assert any(o.languages == ["de"] for o in guard.policy.language_overrides)
    de, en = (guard.check_prompt("x", language=lang).action.value for lang in ("de", "en"))
    assert (de, en) == ("allow", "flag")  # 0.55 is below German's threshold, above English's


def test_calibration_needs_labels(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "hello"}\n')
    out = tmp_path / "o.jsonl"
    run_audit(AuditConfig(input=src, out=out, policy=POLICIES / "audit_fake.yaml", progress=False))
    with pytest.raises(ConfigError, match="--label-field"):
        calibrate(out, load_policy(POLICIES / "audit_fake.yaml"))


# Dev-split rows (the embedded head never trained on them): multilingual hate speech with its
# hard negatives, Chinese and Korean offensive-language sets, English hate sets, benign questions.
_SAMPLE = (
    ("mhc.jsonl", 300),
    ("cold.jsonl", 400),
    ("kor_hate.jsonl", 400),
    ("hatecheck.jsonl", 300),
    ("toxigen_demos.jsonl", 200),
    ("xquad.jsonl", 50),
)


def _real_sample(path: Path) -> int:
    """Write a labelled sample of the shared data (read at run time, never copied) to ``path``."""
    from guardrail._data import read_rows

    n = 0
    with path.open("w", encoding="utf-8") as f:
        for name, per_lang in _SAMPLE:
            seen: dict[str, int] = {}
            for row in read_rows(SHARED_DATA / name):
                lang = row.lang or "und"
                if row.split != "dev" or seen.get(lang, 0) >= per_lang:
                    continue
                seen[lang] = seen.get(lang, 0) + 1
                record = {"id": row.id, "text": row.text, "lang": lang, "unsafe": row.unsafe}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                n += 1
    return n


@pytest.mark.skipif(not (SHARED_DATA / "mhc.jsonl").exists(), reason="needs ../shared/data")
def test_calibration_on_shared_data_meets_its_target_on_held_out_rows(tmp_path):
    # The embedded classifier, as the policy names it; checkouts without it skip (and say so).
    try:
        policy = load_policy(POLICIES / "audit_embedded.yaml")
    except UnknownClassifierError:
        pytest.skip("the embedded classifier is not installed in this checkout")
    src = tmp_path / "sample.jsonl"
    n = _real_sample(src)
    out = tmp_path / "scored.parquet"
    fields = FieldSpec(id_field="id", label_field="unsafe", language_field="lang")
    config = AuditConfig(input=src, out=out, fields=fields, policy=policy, batch_size=128)
    run_audit(config)
    # A target under the policy's own FPR on this sample (~8% with head v2), so calibrating must
    # tighten the thresholds.
    result = calibrate(out, policy, objective="fpr", target_fpr=0.05, holdout=0.5, min_rows=30)
    assert result.calibration_rows + result.holdout_rows == n
    assert len([k for k in result.thresholds if k.startswith("prompt/")]) >= 3
    before, after = result.before.overall, result.after.overall
    assert after.recall is not None and after.fpr is not None and before.fpr is not None
    assert after.recall > 0.5 and after.fpr < before.fpr
    # Thresholds fitted on one half meet the target on the other half (within sampling noise).
    assert after.fpr <= 0.05 + 0.02, result.as_dict()
    # With head v1, per-language thresholds also beat one global threshold at the same recall;
    # with head v2 they do not on this sample (held-out FPR 0.035 against 0.026), so that is
    # reported by `calibrate`, not asserted here.


def _cli(*args: str) -> object:
    from click.testing import CliRunner

    from guardrail.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_a_sound_calibration_has_no_problems(tmp_path):
    out = _audit_shifted(tmp_path)
    base = load_policy(POLICIES / "audit_shifted.yaml")
    result = calibrate(out, base, objective="fpr", target_fpr=0.05, holdout=0.4, min_rows=30)
    assert result.problems == []
    assert result.as_dict()["problems"] == []


def test_too_small_a_calibration_is_refused(tmp_path):
    out = _audit_shifted(tmp_path)
    # keep 60 rows of the 1,800: each part has fewer than 30 rows of a class
    from guardrail.adapters.audit.writer import iter_output

    rows = [r for b in iter_output(out) for r in b][:60]
    small = tmp_path / "small.jsonl"
    small.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = load_policy(POLICIES / "audit_shifted.yaml")
    result = calibrate(small, base, objective="f1", min_rows=5)
    assert any("too small to trust" in p and "calibration part" in p for p in result.problems)
    assert any("held-out part" in p for p in result.problems)
    target = tmp_path / "cal.yaml"
    policy = str(POLICIES / "audit_shifted.yaml")
    refused = _cli(
        "calibrate", str(small), "--policy", policy, "--objective", "f1", "--out", str(target)
    )
    assert refused.exit_code != 0 and not target.exists()
    assert "too small to trust" in refused.output and "not writing" in refused.output
    forced = _cli("calibrate", str(small), "--policy", policy, "--objective", "f1", "--out",
                  str(target), "--force")  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert target.exists() and "warning: the calibration part has" in forced.output


def test_a_rising_held_out_fpr_is_refused(tmp_path):
    out = _audit_shifted(tmp_path)
    # A lenient FPR target (0.6) lets the thresholds fall: more false positives than before.
    base = load_policy(POLICIES / "audit_shifted.yaml")
    result = calibrate(out, base, objective="fpr", target_fpr=0.6, holdout=0.4, min_rows=30)
    before, after = result.before.overall.fpr, result.after.overall.fpr
    assert before is not None and after is not None and after > before
    expected = f"raise the held-out false-positive rate from {before:.3f} to {after:.3f}"
    assert [p for p in result.problems if "false-positive" in p] == [
        f"the new thresholds {expected}"
    ]
    target = tmp_path / "cal.yaml"
    refused = _cli("calibrate", str(out), "--policy", str(POLICIES / "audit_shifted.yaml"),
                   "--target-fpr", "0.6", "--holdout", "0.4", "--out", str(target))  # fmt: skip
    assert refused.exit_code != 0 and not target.exists()
    assert expected in refused.output
