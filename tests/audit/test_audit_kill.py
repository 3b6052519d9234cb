"""Crash safety: a real `guardrail audit` process killed with SIGKILL mid-run, then restarted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from guardrail.adapters.audit import iter_output

from tests.conftest import POLICIES

EXE = shutil.which("guardrail", path=str(Path(sys.executable).parent)) or "guardrail"
N = 300


def _rows_done(manifest: Path) -> int:
    try:
        return int(json.loads(manifest.read_text())["rows_done"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _kill_when(proc: subprocess.Popen[bytes], manifest: Path, at_least: int) -> int:
    """SIGKILL the process once `at_least` rows are committed; bounded in time."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if _rows_done(manifest) >= at_least:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return _rows_done(manifest)


@pytest.mark.parametrize("out_name", ["results.parquet", "results.jsonl"])
def test_sigkill_then_rerun_gives_every_id_exactly_once(tmp_path, out_name):
    src = tmp_path / "data.jsonl"
    texts = ["hello there", "BLOCKME please", "", "plain text"]
    src.write_text(
        "".join(json.dumps({"uid": f"u{i:04d}", "text": texts[i % 4]}) + "\n" for i in range(N))
    )
    out = tmp_path / out_name
    manifest = tmp_path / f"{out_name}.audit" / "manifest.json"
    args = [
        EXE,
        "audit",
        str(src),
        "--out",
        str(out),
        "--id-field",
        "uid",
        "--text-field",
        "text",
        "--policy",
        str(POLICIES / "audit_slow.yaml"),
        "--batch-size",
        "5",
        "--commit-rows",
        "10",
        "--no-progress",
    ]
    env = {**os.environ, "NO_COLOR": "1"}

    # Kill twice at different points, so the second run is itself a resumed run.
    for at_least in (40, 120):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        done = _kill_when(proc, manifest, at_least)
        assert at_least <= done < N
        assert not out.exists()

    final = subprocess.run(args, capture_output=True, timeout=120, env=env, text=True)
    assert final.returncode == 0, final.stderr
    assert "resumed after" in final.stdout
    rows = [r for batch in iter_output(out) for r in batch]
    ids = [r["id"] for r in rows]
    assert len(ids) == N and sorted(ids) == [f"u{i:04d}" for i in range(N)]
    assert [r["row"] for r in rows] == list(range(N))
    assert sum(r["error"] == "empty text" for r in rows) == N // 4
    assert not manifest.parent.exists()
