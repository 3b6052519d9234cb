"""`guardrail check --redact`: the verdict, the entities and the text as it would be sent."""

from __future__ import annotations

import json

from tests.cli.test_cli import run
from tests.conftest import POLICIES
from tests.redaction.conftest import AWS

POLICY = str(POLICIES / "redact.yaml")


def _run(*args: str):
    result = run("check", *args, "--policy", POLICY)
    result.output = result.stdout + result.stderr  # type: ignore[attr-defined]
    return result


def test_check_redact_prints_the_redacted_text_and_exits_15():
    result = _run("Mail jane.doe@example.com today", "--redact", "--exit-code")
    assert result.returncode == 15, result.output
    assert result.output.startswith("REDACT")
    assert "EMAIL" in result.output and "-> <EMAIL_1>" in result.output
    assert result.output.rstrip().endswith("Mail <EMAIL_1> today")


def test_check_redact_json_has_the_text_and_no_values():
    result = _run("Mail jane.doe@example.com today", "--redact", "--json")
    assert result.returncode == 0, result.output
    data = json.loads(result.output)
    assert data["action"] == "redact"
    assert data["redacted_text"] == "Mail <EMAIL_1> today"
    assert data["entities"][0]["placeholder"] == "<EMAIL_1>"
    assert "jane.doe" not in json.dumps(data["entities"])


def test_check_secret_blocks_with_exit_20():
    result = _run(f"key {AWS}", "--exit-code")
    assert result.returncode == 20
    assert "entity:AWS_KEY" in result.output


def test_check_redact_without_entities_section_is_a_clear_error():
    result = run("check", "hello", "--redact", "--policy", str(POLICIES / "basic.yaml"))
    assert result.returncode == 2
    assert "error:" in result.stderr and "entities" in result.stderr
    assert "Traceback" not in result.stderr
