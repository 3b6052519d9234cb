"""The local runner: one output row per input row, batched scoring, output formats, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from guardrail.adapters.audit import AuditConfig, FieldSpec, iter_output, run_audit
from guardrail.adapters.audit.writer import ResultWriter

from guardrail import Guard, load_policy
from guardrail.errors import ConfigError
from guardrail.testing import FakeClassifier
from tests.audit.test_audit_readers import make_input
from tests.conftest import POLICIES

FAKE = POLICIES / "audit_fake.yaml"


def rows_of(out: Path) -> list[dict]:
    return [r for batch in iter_output(out) for r in batch]


def mixed_rows(n: int) -> list[dict]:
    texts = ["a friendly note", "BLOCKME now", "FLAGME maybe", "", "another note"]
    return [{"id": f"id{i}", "text": texts[i % len(texts)]} for i in range(n)]


@pytest.mark.parametrize("out_name", ["out.parquet", "out.jsonl"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_row_once_with_verdict_fields(tmp_path, fmt, out_name):
    src = make_input(tmp_path, fmt, mixed_rows(37))
    out = tmp_path / out_name
    summary = run_audit(
        AuditConfig(
            input=src,
            out=out,
            fields=FieldSpec(id_field="id"),
            policy=FAKE,
            batch_size=8,
            commit_rows=10,
            progress=False,
        )
    )
    rows = rows_of(out)
    assert summary.rows == 37 and len(rows) == 37
    assert [r["id"] for r in rows] == [f"id{i}" for i in range(37)]
    by_text = {i % 5: rows[i] for i in range(5)}
    assert by_text[0]["action"] == "allow" and by_text[0]["unsafe"] == pytest.approx(0.05)
    assert by_text[1]["action"] == "block" and "violent_crimes" in by_text[1]["fired"]
    assert by_text[1]["categories"]["violent_crimes"] == pytest.approx(0.95)
    assert by_text[2]["action"] == "flag" and by_text[2]["fired"] == ["unsafe", "hate"]
    assert by_text[3]["action"] is None and by_text[3]["error"] == "empty text"
    assert summary.errors == sum(1 for r in rows if r["error"])
    # Every scored row has the column; texts of a few words get null (language not told).
    assert all("language" in r for r in rows if r["error"] is None)
    assert not out.with_name(out.name + ".audit").exists()  # work folder removed


def test_scoring_is_batched_and_responses_get_their_prompts(tmp_path):
    rows = [
        {"text": f"answer {i}", "q": f"question {i}", "kind": "response" if i % 2 else "prompt"}
        for i in range(10)
    ]
    src = make_input(tmp_path, "jsonl", rows)
    fake = FakeClassifier()
    guard = Guard(load_policy(FAKE), classifier=fake)
    fields = FieldSpec(prompt_field="q", role_field="kind")
    run_audit(
        AuditConfig(
            input=src, out=tmp_path / "o.jsonl", fields=fields, batch_size=4, progress=False
        ),
        guard=guard,
    )
    assert len(fake.calls) == 6  # 3 input batches, each split into prompts and responses
    samples = [s for call in fake.calls for s in call]
    responses = {s.text: s.context for s in samples if s.role.value == "response"}
    assert responses == {f"answer {i}": f"question {i}" for i in range(1, 10, 2)}
    assert all(s.context is None for s in samples if s.role.value == "prompt")
    out = rows_of(tmp_path / "o.jsonl")
    assert [r["role"] for r in out] == [r["kind"] for r in rows]


def test_classifier_errors_are_recorded_not_dropped(tmp_path):
    src = make_input(tmp_path, "jsonl", mixed_rows(6))
    guard = Guard(load_policy(FAKE), classifier=FakeClassifier(error="model exploded"))
    run_audit(AuditConfig(input=src, out=tmp_path / "o.jsonl", progress=False), guard=guard)
    rows = rows_of(tmp_path / "o.jsonl")
    assert len(rows) == 6
    scored = [r for r in rows if r["error"] != "empty text"]
    assert all("model exploded" in r["error"] and r["action"] == "block" for r in scored)


def test_finished_output_is_not_overwritten_silently(tmp_path):
    src = make_input(tmp_path, "jsonl", mixed_rows(5))
    config = AuditConfig(input=src, out=tmp_path / "o.parquet", policy=FAKE, progress=False)
    run_audit(config)
    with pytest.raises(ConfigError, match="--overwrite"):
        run_audit(config)
    again = run_audit(
        AuditConfig(
            input=src, out=tmp_path / "o.parquet", policy=FAKE, progress=False, overwrite=True
        )
    )
    assert again.rows == 5 and again.resumed_from == 0


def test_resume_continues_a_partial_run_and_refuses_other_settings(tmp_path):
    src = make_input(tmp_path, "jsonl", mixed_rows(30))
    out = tmp_path / "o.jsonl"
    config = AuditConfig(input=src, out=out, policy=FAKE, batch_size=4, progress=False)
    # Simulate a run that committed the first 12 rows and died.
    from guardrail.adapters.audit.runner import open_writer

    writer, _ = open_writer(config, load_policy(FAKE))
    fake = FakeClassifier()
    partial = AuditConfig(input=src, out=tmp_path / "ref.jsonl", policy=FAKE, progress=False)
    run_audit(partial, guard=Guard(load_policy(FAKE), classifier=fake))
    writer.commit(rows_of(tmp_path / "ref.jsonl")[:12])
    assert isinstance(writer, ResultWriter) and writer.rows_done == 12

    with pytest.raises(ConfigError, match="different settings") as refused:
        run_audit(AuditConfig(input=src, out=out, fields=FieldSpec(id_field="text"), policy=FAKE))
    # the refusal names the setting that differs, with both values, and nothing else
    assert "(--id-field: was None, now 'text')" in str(refused.value)
    other = load_policy(FAKE).replace(
        name="other", thresholds={"prompt": {"unsafe": {"block_at": 0.2}}}
    )
    with pytest.raises(ConfigError, match=r"--policy \(its content hash\): was '\w+', now '\w+'"):
        run_audit(AuditConfig(input=src, out=out, policy=other))

    counting = FakeClassifier()
    summary = run_audit(config, guard=Guard(load_policy(FAKE), classifier=counting))
    assert summary.resumed_from == 12 and summary.rows == 30
    assert len(counting.texts) == 30 - 12 - sum(1 for r in mixed_rows(30)[12:] if not r["text"])
    assert [r["row"] for r in rows_of(out)] == list(range(30))
    assert rows_of(out) == rows_of(tmp_path / "ref.jsonl")


def test_bad_output_suffix_and_label_map_target(tmp_path):
    src = make_input(tmp_path, "jsonl", mixed_rows(3))
    with pytest.raises(ConfigError, match=".parquet or .jsonl"):
        run_audit(AuditConfig(input=src, out=tmp_path / "o.csv", policy=FAKE))
    fields = FieldSpec(label_field="y", label_map={"x": "not_a_category"})
    with pytest.raises(ConfigError, match="not_a_category"):
        run_audit(AuditConfig(input=src, out=tmp_path / "o.jsonl", fields=fields, policy=FAKE))


@pytest.mark.parametrize("out_name", ["o.parquet", "o.jsonl"])
def test_lone_surrogates_are_scored_and_ids_escaped(tmp_path, out_name):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a\\udc81", "text": "bad \\udc80 x"}\n{"id": "b", "text": "fine"}\n')
    out = tmp_path / out_name
    fields = FieldSpec(id_field="id")
    run_audit(AuditConfig(input=src, out=out, fields=fields, policy=FAKE, progress=False))
    rows = rows_of(out)
    assert [r["id"] for r in rows] == ["a\\udc81", "b"]
    assert [r["action"] for r in rows] == ["allow", "allow"]
