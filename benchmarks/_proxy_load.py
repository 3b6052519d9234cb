"""Helpers of benchmarks/proxy_overhead.py: closed-loop load (N workers, one request at a time
each), percentiles, process CPU time, free ports."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "LoadResult",
    "classification_seconds",
    "cpu_seconds",
    "free_port",
    "pct",
    "run_load",
    "run_paired",
]

_SUM = re.compile(r"^guardrail_proxy_classification_seconds_sum\{[^}]*\} (\S+)$", re.MULTILINE)


@dataclass
class LoadResult:
    """Latencies of the successful requests of one run, errors, and wall time."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0
    classify_s: float = 0.0  # classification time the proxy reports (its /metrics), if any
    server_cpu_s: float = 0.0  # CPU time the proxy process used during the run
    cycle_ms: list[float | None] = field(default_factory=list)  # paired runs: one per cycle
    error_kinds: dict[str, int] = field(default_factory=dict)

    def failed(self, kind: str) -> None:
        """Count one failed request."""
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def merged(self, other: LoadResult) -> LoadResult:
        """Both runs together (rounds of the same scenario)."""
        return LoadResult(
            self.latencies_ms + other.latencies_ms,
            self.errors + other.errors,
            self.wall_s + other.wall_s,
            self.classify_s + other.classify_s,
            self.server_cpu_s + other.server_cpu_s,
            self.cycle_ms + other.cycle_ms,
            {
                k: self.error_kinds.get(k, 0) + other.error_kinds.get(k, 0)
                for k in {*self.error_kinds, *other.error_kinds}
            },
        )


def classification_seconds(base_url: str) -> float | None:
    """Total classification seconds from a guardrail proxy's /metrics (None elsewhere)."""
    try:
        r = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    if r.status_code != 200 or "guardrail_proxy" not in r.text:
        return None
    return sum(float(v) for v in _SUM.findall(r.text))


def numbered(body: dict[str, Any], i: int) -> dict[str, Any]:
    """``body`` with the request number in the prompt, so no cache sees the same text twice."""
    messages = [{**m, "content": f"{m['content']} (request {i})"} for m in body["messages"]]
    return {**body, "messages": messages}


async def _one(client: httpx.AsyncClient, url: str, body: dict[str, Any], stream: bool) -> str:
    """``ok``, or what went wrong (the status, or the code of an error body)."""
    if not stream:
        r = await client.post(url, json=body)
        data = r.content
        ok = r.status_code == 200 and b'"choices"' in data
    else:
        async with client.stream("POST", url, json=body) as r:
            data = b"".join([chunk async for chunk in r.aiter_raw()])
        ok = r.status_code == 200 and b"[DONE]" in data
    if ok:
        return "ok"
    code = re.search(rb'"code":\s*"([a-z_]+)"', data)
    return f"{r.status_code}:{code.group(1).decode() if code else '-'}"


async def run_load(
    base_url: str,
    body: dict[str, Any],
    *,
    concurrency: int,
    total: int,
    stream: bool,
    time_cap_s: float = 60.0,
) -> LoadResult:
    """``total`` chat completions with ``concurrency`` workers (stops early at ``time_cap_s``)."""
    url = f"{base_url}/chat/completions"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    result = LoadResult()
    remaining = total
    before = classification_seconds(base_url)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        deadline = started + time_cap_s

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    kind = await _one(client, url, numbered(body, remaining), stream)
                except httpx.HTTPError as e:
                    kind = type(e).__name__
                if kind == "ok":
                    result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    result.failed(kind)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.wall_s = time.perf_counter() - started
    after = classification_seconds(base_url)
    if before is not None and after is not None:
        result.classify_s = after - before
    return result


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (all its threads) so far; 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_paired(
    urls: dict[str, str], body: dict[str, Any], *, cycles: int, stream: bool, time_cap_s: float
) -> dict[str, LoadResult]:
    """Concurrency 1, interleaved: each cycle sends one request to every target in turn, so
    load drift hits them alike and per-cycle differences can be paired."""
    results = {name: LoadResult() for name in urls}
    before = {name: classification_seconds(url) for name, url in urls.items()}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = {name: httpx.AsyncClient(limits=limits, timeout=60) for name in urls}
    deadline = time.perf_counter() + time_cap_s
    try:
        for i in range(cycles):
            if time.perf_counter() > deadline:
                break
            for name, url in urls.items():
                t0 = time.perf_counter()
                try:
                    kind = await _one(
                        clients[name], f"{url}/chat/completions", numbered(body, i), stream
                    )
                except httpx.HTTPError as e:
                    kind = type(e).__name__
                ms = (time.perf_counter() - t0) * 1000
                result = results[name]
                result.cycle_ms.append(ms if kind == "ok" else None)
                if kind == "ok":
                    result.latencies_ms.append(ms)
                    result.wall_s += ms / 1000
                else:
                    result.failed(kind)
    finally:
        for client in clients.values():
            await client.aclose()
    for name, url in urls.items():
        after = classification_seconds(url)
        if before[name] is not None and after is not None:
            results[name].classify_s = after - before[name]  # type: ignore[operator]
    return results
