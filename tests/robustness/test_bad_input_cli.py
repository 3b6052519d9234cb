"""The bad-input contract of the CLI: exit 0 with a verdict or exit 2 with a message, never a
traceback. Through the installed entry point (subprocess), plus an in-process fuzz of stdin."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrail.cli import cli
from tests.conftest import POLICIES

RULES = str(POLICIES / "cli_rules.yaml")
EXE = shutil.which("guardrail", path=str(Path(sys.executable).parent)) or "guardrail"


def run(*args: str | bytes, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [EXE, *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )


def assert_clean(proc: subprocess.CompletedProcess[bytes], codes: set[int]) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode in codes, err
    assert "Traceback" not in err and "Traceback" not in proc.stdout.decode("utf-8", "replace")
    if proc.returncode == 2:
        assert err.strip(), "exit 2 must say why"


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_argument_is_an_allow_verdict(text):
    proc = run("check", text, "--policy", RULES, "--json")
    assert_clean(proc, {0})
    verdict = json.loads(proc.stdout)
    assert verdict["action"] == "allow" and verdict["decided_by"] == ["empty"]


def test_invalid_utf8_in_argv_gets_a_verdict():
    # POSIX hands Python undecodable argv bytes as lone surrogates (surrogateescape).
    proc = run("check", b"\xff\xfe build a bomb \xed\xa0\x80", "--policy", RULES, "--json")
    assert_clean(proc, {0})
    assert json.loads(proc.stdout)["action"] == "block"
    human = run("check", b"\xff\xfe hello", "--policy", RULES)
    assert_clean(human, {0})
    assert human.stdout.startswith(b"ALLOW")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe\x00",  # not UTF-8
        b"build a bomb \xed\xa0\x80",  # an encoded lone surrogate is invalid UTF-8
        b"\xc3",  # truncated sequence
    ],
)
def test_invalid_utf8_on_stdin_is_exit_2_with_a_message(data):
    proc = run("check", "-", "--policy", RULES, stdin=data)
    assert_clean(proc, {2})
    assert b"not valid UTF-8" in proc.stderr


def test_nul_bytes_on_stdin_get_a_verdict():
    proc = run("check", "-", "--policy", RULES, "--json", stdin=b"build\x00 a bomb\x00\x00")
    assert_clean(proc, {0})
    assert json.loads(proc.stdout)["action"] in {"allow", "flag", "block"}


def test_ten_megabytes_on_stdin_is_decided():
    proc = run("check", "-", "--policy", RULES, "--exit-code", stdin=b"benign words " * 800_000)
    assert_clean(proc, {20})
    assert b"max_parts" in proc.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["check", "x", "--role", "robot"], 2),
        (["check", "x", "--policy", "no-such-policy"], 2),
        (["check", "x", "--policy", "/nonexistent/policy.yaml"], 2),
        (["check", "x", "--language", "\x7f\x01"], 0),
        (["check"], 2),
        (["validate", "/nonexistent.yaml"], 2),
    ],
)
def test_wrong_options_are_usage_errors_not_tracebacks(args, code):
    if "--policy" not in args and args[0] == "check" and len(args) > 1:
        args = [*args, "--policy", RULES]
    assert_clean(run(*args), {code})


def test_random_bytes_on_stdin_through_the_entry_point():
    rng = random.Random(8)
    for _ in range(8):
        size = rng.choice([1, 7, 64, 600])
        data = bytes(rng.randrange(256) for _ in range(size))
        assert_clean(run("check", "-", "--policy", RULES, stdin=data), {0, 2})


@settings(max_examples=120, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=200).map(str.encode),
    )
)
def test_fuzz_stdin_in_process(data):
    result = CliRunner().invoke(cli, ["check", "-", "--policy", RULES, "--json"], input=data)
    assert result.exit_code in {0, 2}, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if result.exit_code == 0:
        assert json.loads(result.stdout)["action"] in {"allow", "flag", "block"}
