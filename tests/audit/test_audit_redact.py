"""The auditor with an `entities` policy: counts by entity type, redacted text when asked."""

from __future__ import annotations

import pytest
from guardrail.adapters.audit import AuditConfig, FieldSpec, run_audit
from guardrail.adapters.audit.report import write_report
from guardrail.adapters.audit.stats import collect_stats

from guardrail import Guard, load_policy
from guardrail.testing import FakeClassifier
from tests.audit.test_audit_readers import make_input
from tests.audit.test_audit_runner import rows_of
from tests.conftest import POLICIES

ROWS = [
    {"text": "Mail jane.doe@example.com or ann@example.org today"},
    {"text": "key AKIAIOSFODNN7EXAMPLE please"},
    {"text": "nothing personal here"},
]


@pytest.mark.parametrize("out_name", ["out.parquet", "out.jsonl"])
def test_entity_counts_and_redacted_text(tmp_path, out_name):
    guard = Guard(load_policy(POLICIES / "redact.yaml"), classifier=FakeClassifier())
    out = tmp_path / out_name
    config = AuditConfig(
        input=make_input(tmp_path, "jsonl", ROWS),
        out=out,
        fields=FieldSpec(),
        policy=guard.policy,
        progress=False,
        redacted_text=True,
    )
    run_audit(config, guard=guard)
    rows = rows_of(out)
    assert [r["action"] for r in rows] == ["redact", "block", "allow"]
    assert dict(rows[0]["entities"]) == {"EMAIL": 2}
    assert dict(rows[1]["entities"]) == {"AWS_KEY": 1}
    assert not rows[2]["entities"]
    assert rows[0]["redacted_text"] == "Mail <EMAIL_1> or <EMAIL_2> today"
    # Every entity is replaced in the output, whatever its action (no values in the output).
    assert rows[1]["redacted_text"] == "key <AWS_KEY_1> please"
    assert rows[2]["redacted_text"] == "nothing personal here"
    stats = collect_stats(out, [])
    assert stats.entities == {"EMAIL": 2, "AWS_KEY": 1}
    assert stats.actions["redact"] == 1
    report = tmp_path / "report.html"
    write_report(report, results=out, categories=[], meta={}, include_text=False)
    html = report.read_text()
    assert "Personal data and secrets found" in html and "EMAIL" in html


def test_without_the_option_no_text_is_written(tmp_path):
    guard = Guard(load_policy(POLICIES / "redact.yaml"), classifier=FakeClassifier())
    out = tmp_path / "out.jsonl"
    config = AuditConfig(
        input=make_input(tmp_path, "jsonl", ROWS[:1]),
        out=out,
        policy=guard.policy,
        progress=False,
    )
    run_audit(config, guard=guard)
    row = rows_of(out)[0]
    assert row["redacted_text"] is None
    assert "jane.doe" not in out.read_text()
