"""`guardrail audit` and `guardrail calibrate` through the installed entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from guardrail.adapters.audit import iter_output

from guardrail import Guard
from tests.conftest import POLICIES

EXE = shutil.which("guardrail", path=str(Path(sys.executable).parent)) or "guardrail"
FAKE = str(POLICIES / "audit_fake.yaml")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120, env=env)


def _labelled(tmp_path: Path) -> Path:
    src = tmp_path / "data.jsonl"
    lines = []
    for i in range(400):
        lang_text = ["hello my good friend", "guten Tag mein Freund"][i % 2]
        unsafe = i % 4 == 0
        text = f"{'FLAGME ' if unsafe or i % 10 == 1 else ''}{lang_text} {i}"
        lines.append(json.dumps({"id": i, "text": text, "harmful": "toxic" if unsafe else "ok"}))
    src.write_text("\n".join(lines) + "\n")
    return src


def test_audit_report_and_calibrate_end_to_end(tmp_path):
    src = _labelled(tmp_path)
    out, report, calibrated = tmp_path / "r.parquet", tmp_path / "r.html", tmp_path / "cal.yaml"
    done = run(
        "audit",
        str(src),
        "--text-field",
        "text",
        "--id-field",
        "id",
        "--out",
        str(out),
        "--report",
        str(report),
        "--policy",
        FAKE,
        "--label-field",
        "harmful",
        "--label-map",
        "toxic=unsafe,ok=safe",
        "--group-by",
        "harmful",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert "400 rows" in done.stdout and report.exists() and "<svg" in report.read_text()
    assert "By harmful (2 groups)" in report.read_text()
    rows = [r for b in iter_output(out) for r in b]
    assert len(rows) == 400 and sum(r["label"] for r in rows) == 100

    cal = run(
        "calibrate",
        str(out),
        "--policy",
        FAKE,
        "--out",
        str(calibrated),
        "--objective",
        "f1",
        "--min-rows",
        "10",
        "--json",
    )
    assert cal.returncode == 0, cal.stderr
    summary = json.loads(cal.stdout)
    assert summary["holdout_rows"] + summary["calibration_rows"] == 400
    assert summary["after"]["overall"]["n"] == summary["holdout_rows"]
    data = yaml.safe_load(calibrated.read_text())
    assert data["name"] == "audit_fake-calibrated"
    assert Guard.from_policy(calibrated).policy.name == "audit_fake-calibrated"


def test_errors_are_messages_not_tracebacks(tmp_path):
    src = str(_labelled(tmp_path))
    out = str(tmp_path / "o.jsonl")
    cases = [
        ["audit", src, "--out", str(tmp_path / "o.txt"), "--policy", FAKE],
        ["audit", src, "--out", out, "--policy", "no-such-policy"],
        ["audit", src, "--out", out, "--calibrate", "c.yaml"],
        ["audit", src, "--out", out, "--policy", FAKE, "--label-field", "harmfull"],
        ["audit", src, "--out", out, "--policy", FAKE, "--label-field", "harmful",
         "--calibrate", "c.yaml"],
        ["calibrate", src, "--out", str(tmp_path / "c.yaml"), "--target-fpr", "0.1"],
        ["audit", src, "--out", out, "--policy", FAKE, "--group-by", "harmful"],
        ["audit", src, "--out", str(tmp_path / "g.jsonl"), "--policy", FAKE, "--report",
         str(tmp_path / "r.html"), "--group-by", "nope"],
    ]  # fmt: skip
    for args in cases:
        done = run(*args, "--no-progress") if args[0] == "audit" else run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "error:" in done.stderr, done.stderr
    assert "no such column" in run("audit", src, "--out", out, "--policy", FAKE,
                                   "--text-field", "body").stderr  # fmt: skip
    assert not (tmp_path / "o.txt").exists()
