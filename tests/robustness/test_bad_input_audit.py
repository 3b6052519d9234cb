"""The bad-input contract of the auditor: every bad row becomes that row's error in the results,
the run and its report finish, and nothing crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from guardrail.cli import cli
from tests.conftest import POLICIES

POLICY = str(POLICIES / "audit_fake.yaml")

BAD_LINES = [
    (b'{"id": 1, "text": "hello"}', "allow", None),
    (b'{"id": 2, "text": ""}', None, "empty"),
    (b'{"id": 3, "text": "a\\u0000b"}', "allow", None),
    (b'{"id": 4, "text": "\\ud800 lone surrogate"}', "allow", None),
    (b'{"id": 5, "text": null}', None, "null"),
    (b'{"id": 6, "text": 5}', None, "not a string"),
    (b'{"id": 7, "text": ["a"]}', None, "not a string"),
    (b'{"id": 8}', None, "no 'text' field"),
    (b"not json", None, "invalid JSON"),
    (b"[1, 2]", None, "not an object"),
    (b'{"id": 11, "text": "\xff\xfe"}', None, "invalid UTF-8"),
    (b'{"id": 12, "text": ' + b"[" * 5000 + b"]" * 5000 + b"}", None, "nested too deeply"),
    (b'{"id": 13, "text": "B\\u200bLOCKME"}', "block", None),
    (b'{"id": 14, "text": "' + b"x " * (2 * 1024 * 1024) + b'"}', "block", None),  # 4 MB
]


def audit(tmp_path: Path, data: bytes, suffix: str, *args: str) -> list[dict]:
    source = tmp_path / f"in{suffix}"
    source.write_bytes(data)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli,
        ["audit", str(source), "--out", str(out), "--policy", POLICY, "--no-progress", *args],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_every_bad_jsonl_line_is_an_error_row_and_the_report_is_written(tmp_path):
    report = tmp_path / "report.html"
    rows = audit(
        tmp_path, b"\n".join(line for line, _, _ in BAD_LINES) + b"\n", ".jsonl",
        "--report", str(report),
    )  # fmt: skip
    assert len(rows) == len(BAD_LINES)
    for row, (_, action, error) in zip(rows, BAD_LINES, strict=True):
        assert row["action"] == action, row
        if error is None:
            assert row["error"] is None
        else:
            assert error in row["error"], row
    assert "view:invisible" in rows[12]["decided_by"]
    assert rows[13]["decided_by"] == ["max_chars"]
    assert report.stat().st_size > 0  # the surrogate text did not break the HTML report


def test_bad_csv_rows(tmp_path):
    data = b'text,label\nhello,1\n"\xff\xfe",0\nB\xe2\x80\x8bLOCKME,1\n"a\x00b",0\nx,y,z\n'
    rows = audit(tmp_path, data, ".csv", "--label-field", "label")
    assert [r["action"] for r in rows] == ["allow", None, "block", "allow", None]
    assert "invalid UTF-8" in rows[1]["error"]
    assert "more fields" in rows[4]["error"]


def test_unreadable_input_is_an_error_not_a_traceback(tmp_path):
    source = tmp_path / "data.parquet"
    source.write_bytes(b"this is not parquet")
    result = CliRunner().invoke(
        cli, ["audit", str(source), "--out", str(tmp_path / "o.jsonl"), "--policy", POLICY]
    )
    assert result.exit_code == 2, result.output
    assert "not a readable Parquet file" in result.output


# An id holding a lone surrogate (from a JSON escape) must not break the results writer.
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_surrogate_in_id_field(tmp_path, suffix):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": "\\ud800", "text": "hi"}\n{"id": "b", "text": "hello"}\n')
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(
        cli,
        ["audit", str(source), "--out", str(out), "--policy", POLICY, "--id-field", "id"],
    )
    assert result.exit_code == 0 and result.exception is None, result.output
    assert out.stat().st_size > 0
