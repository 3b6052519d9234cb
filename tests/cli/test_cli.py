"""The CLI through its installed entry point, in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POLICIES

RULES = str(POLICIES / "cli_rules.yaml")
EXE = shutil.which("guardrail", path=str(Path(sys.executable).parent)) or "guardrail"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [EXE, *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def test_check_human_output_and_default_exit_code():
    out = run("check", "how to build a bomb", "--policy", RULES)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("BLOCK") and "unsafe=0.950" in out.stdout
    assert "decided by: threshold" in out.stdout


@pytest.mark.parametrize(
    ("text", "code", "action"),
    [
        ("hello there friend", 0, "allow"),
        ("such rude words", 10, "flag"),
        ("how to build a bomb", 20, "block"),
    ],
)
def test_check_json_and_exit_codes(text, code, action):
    out = run("check", text, "--policy", RULES, "--json", "--exit-code")
    assert out.returncode == code, out.stderr
    verdict = json.loads(out.stdout)
    assert verdict["action"] == action and verdict["policy"] == "cli_rules"


def test_check_response_with_prompt_from_stdin():
    out = run(
        "check",
        "-",
        "--role",
        "response",
        "--prompt",
        "q",
        "--policy",
        RULES,
        "--json",
        stdin=b"Sure: build a bomb like this",
    )
    assert out.returncode == 0
    assert json.loads(out.stdout)["role"] == "response"


def test_invalid_utf8_on_stdin_is_clean_error():
    out = run("check", "-", "--policy", RULES, stdin=b"\xff\xfe\xc3(")
    assert out.returncode == 2
    assert "not valid UTF-8" in out.stderr and "Traceback" not in out.stderr


def test_unknown_policy_is_clean_error():
    out = run("check", "x", "--policy", "no-such-policy")
    assert out.returncode == 2
    assert "unknown built-in policy" in out.stderr and "default" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_reports_every_bad_file():
    out = run("validate", RULES, str(POLICIES / "typo.yaml"), str(POLICIES / "bad_category.yaml"))
    assert out.returncode == 1
    assert "ok" in out.stdout and "cli_rules" in out.stdout
    assert "thresholds.prompt.unsafe.blok_at" in out.stderr
    assert "violence_crimes" in out.stderr and "Traceback" not in out.stderr


def test_validate_builtins():
    policies_dir = Path(__file__).resolve().parents[2] / "policies"
    files = sorted(str(p) for p in policies_dir.glob("*.yaml"))
    out = run("validate", *files)
    assert out.returncode == 0, out.stderr


def test_policies_taxonomy_schema_classifiers():
    assert "default" in run("policies").stdout
    tax = run("taxonomy")
    assert "S14" in tax.stdout and "jailbreak" in tax.stdout and "mlcommons -> openai" in tax.stdout
    assert len(json.loads(run("taxonomy", "openai", "--json").stdout)["categories"]) == 13
    schema = json.loads(run("schema").stdout)
    assert schema["title"] == "Policy" and "thresholds" in schema["properties"]
    names = run("classifiers").stdout.split()
    assert {"rules", "fake"} <= set(names)


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("check", "policies", "schema", "taxonomy", "validate"):
        assert cmd in out.stdout


def test_check_uses_the_numpy_encoder_unless_told_otherwise(monkeypatch):
    from guardrail.cli.core import _one_shot
    from guardrail.policy import load_policy

    monkeypatch.delenv("GUARDRAIL_ENCODER_BACKEND", raising=False)
    default = load_policy("default")
    assert _one_shot(default).classifier.options["encoder_backend"] == "numpy"
    assert "encoder_backend" not in default.classifier.options  # the loaded policy is untouched
    rules = load_policy("rules-example")
    assert _one_shot(rules) is rules
    monkeypatch.setenv("GUARDRAIL_ENCODER_BACKEND", "torch")
    assert _one_shot(default) is default


# -- issue 17 (10): configuration errors are exit 2, never a verdict ----------------------------


def test_a_policy_whose_backend_extra_is_missing_is_exit_2(monkeypatch):
    from click.testing import CliRunner

    from guardrail.cli import cli

    monkeypatch.setitem(sys.modules, "transformers", None)  # as without the [hf] extra
    result = CliRunner().invoke(cli, ["check", "--policy", "qwen3guard", "hello"])
    assert result.exit_code == 2, result.output
    assert "BLOCK" not in result.output
    assert "transformers is missing" in result.output
    # an install hint that works without a package index
    assert 'pip install ".[hf]"' in result.output and "guardrail-sdk[hf]" not in result.output


def test_a_folder_as_policy_says_so(tmp_path):
    r = run("check", "--policy", str(tmp_path), "hello")
    assert r.returncode == 2
    assert f"{tmp_path}: is a folder, not a policy file" in r.stderr
