"""Proxy overhead: what the guardrail proxy adds to a call, against LiteLLM's proxy as reference.

Everything talks to the same local fake upstream (``tests/fake_upstream.py``: real HTTP on
127.0.0.1, in its own process), through four targets:

* ``direct``: the client calls the fake upstream itself (the baseline);
* ``guardrail-fake``: ``guardrail serve`` with a no-op classifier (``fake``): the proxy's own cost;
* ``guardrail-default``: ``guardrail serve --policy default`` (the embedded classifier);
* ``litellm``: LiteLLM's proxy (``litellm[proxy]==LITELLM_VERSION`` in its own venv,
  ``.venv-litellm``; ``LITELLM_LOCAL_MODEL_COST_MAP=True``, no guardrails).

Each proxy runs in its own process with uvicorn (uvloop + httptools where installed). For each
target, non-streamed and streamed chat completions at concurrency 1, 16 and 64. At concurrency 1
the targets take turns request by request (the added latency is the median of the per-turn
differences); at 16 and 64 the requests are split into rounds that cycle through the targets, so
machine load drifts hit them alike. Each prompt carries its request number, so no cache helps. Reported:
p50 / p99 latency, the latency added over ``direct``, requests/s, and for the guardrail proxy the
mean classification time per request it reports in its ``/metrics``, so the added latency beyond
classification is known (``+p50-cls``).

    nice -n 10 python benchmarks/proxy_overhead.py [--quick] [--rounds 4] [--no-litellm]

Results go to ``benchmarks/results/proxy_overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._proxy_load import (  # noqa: E402
    LoadResult,
    cpu_seconds,
    free_port,
    pct,
    run_load,
    run_paired,
)
from tests.fake_upstream import BASIL_ANSWER, BASIL_QUESTION  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "proxy_overhead.json"
LITELLM_VERSION = "1.100.5"
LITELLM_VENV = ROOT / ".venv-litellm"
CONCURRENCY = (1, 16, 64)
COUNTS = {1: 240, 16: 480, 64: 960}  # requests per (target, mode, concurrency), all rounds
QUICK_COUNTS = {1: 60, 16: 160, 64: 320}
TIME_CAP_S = 12.0  # per run (one round of one scenario): LiteLLM's streams are slow here
MODEL = "fake-model"
PROMPT = BASIL_QUESTION
# The streamed answer: ~600 characters in ~5-character chunks (the proxy checks it 3-4 times).
ANSWER = BASIL_ANSWER
FAKE_POLICY = """\
name: bench-fake
classifier: {name: fake}
thresholds:
  prompt: {unsafe: {flag_at: 0.5, block_at: 0.9}}
  response: {unsafe: {flag_at: 0.5, block_at: 0.9}}
"""
UPSTREAM_SCRIPT = """\
import http.server, sys
sys.path.insert(0, sys.argv[1])
from tests import fake_upstream as fu
# http.server's listen backlog is 5: at concurrency 64 connections would be refused or retried.
http.server.ThreadingHTTPServer.request_queue_size = 256
# Real servers set TCP_NODELAY; without it, small SSE writes meet delayed ACKs (40 ms stalls).
fu._Handler.disable_nagle_algorithm = True
answer = sys.argv[2]
pieces = [answer[i:i + 5] for i in range(0, len(answer), 5)]
fu._STREAM_DEFAULTS["/v1/chat/completions"] = fu.chat_stream(*pieces)
fu._DEFAULTS["/v1/chat/completions"] = fu.chat_reply(answer)
with fu.FakeUpstream() as up:
    print(up.base_url, flush=True)
    sys.stdin.read()  # run until the benchmark closes our stdin
"""


def start_upstream() -> tuple[subprocess.Popen[str], str]:
    """The fake upstream in its own process; returns it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", UPSTREAM_SCRIPT, str(ROOT), ANSWER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def start_guardrail(upstream: str, policy: str, port: int) -> subprocess.Popen[bytes]:
    """``guardrail serve`` in its own process (access log off, as for LiteLLM below)."""
    env = {
        **os.environ,
        "GUARDRAIL_UPSTREAM_URL": upstream,
        "GUARDRAIL_POLICY": policy,
        "GUARDRAIL_PORT": str(port),
        "GUARDRAIL_LOG_LEVEL": "warning",
    }
    exe = Path(sys.executable).with_name("guardrail")
    return subprocess.Popen([str(exe), "serve"], env=env, stderr=subprocess.DEVNULL)


def start_litellm(upstream: str, port: int, workdir: Path) -> subprocess.Popen[bytes] | str:
    """LiteLLM's proxy in its own venv, or the reason it cannot run."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if not exe.exists():
        return (
            f"{exe} not found: create it with `python3 -m venv {LITELLM_VENV} && "
            f'{LITELLM_VENV}/bin/pip install "litellm[proxy]=={LITELLM_VERSION}"`'
        )
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-fake\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    cmd = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir
    )


def wait_ready(url: str, proc: subprocess.Popen[Any], timeout_s: float = 120) -> str | None:
    """Poll ``url`` until it answers 200; None when ready, else why not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with status {proc.returncode} before it was ready"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return f"not ready after {timeout_s:.0f} s"


def body(stream: bool) -> dict[str, Any]:
    """The request: a chat completion, streamed or not."""
    messages = [{"role": "user", "content": PROMPT}]
    return {"model": MODEL, "messages": messages, "stream": stream}


def measure(
    targets: dict[str, str], pids: dict[str, int], counts: dict[int, int], rounds: int
) -> dict[tuple[str, bool, int], LoadResult]:
    """Every (target, mode, concurrency), in rounds that cycle through the targets."""
    results: dict[tuple[str, bool, int], LoadResult] = {}
    for stream in (False, True):
        for url in targets.values():  # warm-up: connections, model loading, caches
            asyncio.run(run_load(url, body(stream), concurrency=4, total=40, stream=stream))
        cpu0 = {name: cpu_seconds(pids.get(name)) for name in targets}
        paired = asyncio.run(
            run_paired(targets, body(stream), cycles=counts[1], stream=stream, time_cap_s=120)
        )
        for name, result in paired.items():
            result.server_cpu_s = cpu_seconds(pids.get(name)) - cpu0[name]
            results[(name, stream, 1)] = result
        for concurrency in CONCURRENCY[1:]:  # concurrency 1 is the paired run above
            per_round = max(concurrency, counts[concurrency] // rounds)
            for _ in range(rounds):
                for name, url in targets.items():
                    cpu0 = cpu_seconds(pids.get(name))
                    result = asyncio.run(
                        run_load(
                            url,
                            body(stream),
                            concurrency=concurrency,
                            total=per_round,
                            stream=stream,
                            time_cap_s=TIME_CAP_S,
                        )
                    )
                    result.server_cpu_s = cpu_seconds(pids.get(name)) - cpu0
                    key = (name, stream, concurrency)
                    results[key] = results[key].merged(result) if key in results else result
    return results


def summarise(results: dict[tuple[str, bool, int], LoadResult]) -> list[dict[str, Any]]:
    """One row per (target, mode, concurrency), with latency added over ``direct``."""
    rows = []
    for (name, stream, concurrency), r in results.items():
        base = results[("direct", stream, concurrency)]
        row: dict[str, Any] = {
            "target": name,
            "stream": stream,
            "concurrency": concurrency,
            "requests": len(r.latencies_ms),
            "errors": r.errors,
            "error_kinds": r.error_kinds,
            "p50_ms": pct(r.latencies_ms, 50),
            "p99_ms": pct(r.latencies_ms, 99),
            "rps": len(r.latencies_ms) / r.wall_s if r.wall_s else 0.0,
        }
        if r.server_cpu_s and r.latencies_ms:
            row["server_cpu_ms_per_request"] = r.server_cpu_s * 1000 / len(r.latencies_ms)
        row["added_p50_ms"] = row["p50_ms"] - pct(base.latencies_ms, 50)
        row["added_p99_ms"] = row["p99_ms"] - pct(base.latencies_ms, 99)
        if r.cycle_ms and base.cycle_ms:
            # concurrency 1: the median of per-cycle differences (robust to load drift)
            pairs = zip(r.cycle_ms, base.cycle_ms, strict=False)
            diffs = [a - b for a, b in pairs if a is not None and b is not None]
            row["added_p50_unpaired_ms"] = row["added_p50_ms"]
            row["added_p50_ms"] = pct(diffs, 50)
        if name.startswith("guardrail") and r.latencies_ms:
            # mean classification time per request, from the proxy's own /metrics
            row["classify_mean_ms"] = r.classify_s * 1000 / len(r.latencies_ms)
            row["added_p50_beyond_classify_ms"] = row["added_p50_ms"] - row["classify_mean_ms"]
        rows.append(row)
    order = {"direct": 0, "guardrail-fake": 1, "guardrail-default": 2, "litellm": 3}
    rows.sort(key=lambda x: (x["stream"], x["concurrency"], order.get(x["target"], 9)))
    return rows


def verdicts(rows: list[dict[str, Any]], litellm_error: str | None) -> dict[str, Any]:
    """The issue's targets, checked against the rows."""
    out: dict[str, Any] = {}
    for row in rows:
        if row["target"] == "guardrail-fake" and row["concurrency"] == 1:
            mode = "stream" if row["stream"] else "json"
            out[f"c1_added_p50_beyond_classify_le_1ms[{mode}]"] = (
                row["added_p50_beyond_classify_ms"] <= 1.0
            )
    if litellm_error is None:
        index = {(r["target"], r["stream"], r["concurrency"]): r for r in rows}
        for (target, stream, concurrency), row in index.items():
            if target != "guardrail-fake":
                continue
            ref = index[("litellm", stream, concurrency)]
            mode = "stream" if stream else "json"
            for stat in ("added_p50_ms", "added_p99_ms"):
                out[f"less_{stat}_than_litellm[{mode},c={concurrency}]"] = row[stat] < ref[stat]
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    """The table on standard output."""
    head = (
        f"{'mode':6} {'c':>3} {'target':18} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'+p50 ms':>8} {'+p99 ms':>8} {'req/s':>8} {'cls ms':>8} {'+p50-cls':>9} "
        f"{'cpu ms':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        cls = f"{r['classify_mean_ms']:8.2f}" if "classify_mean_ms" in r else f"{'':8}"
        beyond = (
            f"{r['added_p50_beyond_classify_ms']:9.2f}"
            if "added_p50_beyond_classify_ms" in r
            else f"{'':9}"
        )
        print(
            f"{'stream' if r['stream'] else 'json':6} {r['concurrency']:>3} {r['target']:18} "
            f"{r['requests']:>5} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['added_p50_ms']:8.2f} "
            f"{r['added_p99_ms']:8.2f} {r['rps']:8.1f} {cls} {beyond} "
            + (
                f"{r['server_cpu_ms_per_request']:7.2f}"
                if "server_cpu_ms_per_request" in r
                else " " * 7
            )
            + (f"  errors={r['error_kinds']}" if r["errors"] else "")
        )


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    import uvicorn

    loops = [m for m in ("uvloop", "httptools") if _importable(m)]
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "uvicorn": uvicorn.__version__,
        "guardrail_proxy_server_extras": loops,
        "litellm_version": LITELLM_VERSION,
        "fake_upstream": "tests/fake_upstream.py (http.server, threads), own process",
        "client": "httpx.AsyncClient, one process, keep-alive pool of `concurrency` connections",
    }


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main() -> None:
    """Run the benchmark and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds cycling the targets")
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM reference")
    args = parser.parse_args()
    counts = QUICK_COUNTS if args.quick else COUNTS
    # a terminated run still stops the processes it started (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = environment()
    procs: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            targets, pids, litellm_error = start_targets(
                workdir, procs, skip_litellm=args.no_litellm
            )
            results = measure(targets, pids, counts, args.rounds)
        finally:
            for proc in procs:
                stop(proc)
    env["load_average_at_end"] = os.getloadavg()
    rows = summarise(results)
    print_table(rows)
    checks = verdicts(rows, litellm_error)
    if litellm_error:
        print(f"\nLiteLLM reference not measured: {litellm_error}")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "environment": env,
        "counts": counts,
        "rounds": args.rounds,
        "rows": rows,
        "targets_met": checks,
        "litellm_error": litellm_error,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def start_targets(
    workdir: Path, procs: list[subprocess.Popen[Any]], *, skip_litellm: bool
) -> tuple[dict[str, str], dict[str, int], str | None]:
    """Start the upstream and the proxies: the targets' base URLs (``.../v1``) and pids."""
    upstream_proc, upstream = start_upstream()
    procs.append(upstream_proc)
    targets = {"direct": upstream}
    pids: dict[str, int] = {}
    policy = workdir / "bench-fake.yaml"
    policy.write_text(FAKE_POLICY)
    for name, policy_name in (("guardrail-fake", str(policy)), ("guardrail-default", "default")):
        port = free_port()
        proc = start_guardrail(upstream, policy_name, port)
        procs.append(proc)
        error = wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        if error:
            raise SystemExit(f"{name}: {error}")
        targets[name] = f"http://127.0.0.1:{port}/v1"
        pids[name] = proc.pid
    if skip_litellm:
        return targets, pids, "skipped (--no-litellm)"
    port = free_port()
    started = start_litellm(upstream, port, workdir)
    if isinstance(started, str):
        return targets, pids, started
    procs.append(started)
    error = wait_ready(f"http://127.0.0.1:{port}/health/liveliness", started)
    if error:
        return targets, pids, f"litellm {error}"
    targets["litellm"] = f"http://127.0.0.1:{port}/v1"
    pids["litellm"] = started.pid
    return targets, pids, None


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop one process we started (by its handle), politely, then firmly."""
    if proc.stdin is not None:
        proc.stdin.close()
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


if __name__ == "__main__":
    main()
