"""Middleware cost: latency guard.wrap() adds per call, and what stream moderation adds.

Everything runs against the same local fake upstream (``tests/fake_upstream.py``, real HTTP on
127.0.0.1) with the real ``openai`` client, so the numbers are the wrapper's cost, not a
model's. Variants are interleaved call by call so that machine load hits them alike.

* Calls (non-streamed chat completions): unwrapped; wrapped with ``FakeClassifier`` (scores
  instantly); wrapped with the real policy (``--policy``, default ``default``). Per round the
  added latency (wrapped minus unwrapped) is split, from the verdicts' own timings, into time
  inside the guard (language detection, views, engine, and the classifier: ``classifier only``)
  and the wrapper's own overhead (the rest: text extraction, copies, reports). p50 / p99.
* Streams: a ~1,000-character answer in ~4-character tokens, one token every
  ``--token-ms``. Time to the first released token and end-to-end time, unwrapped and wrapped
  at check intervals of one sentence (``check_every=1``) and 200 characters
  (``check_every=200, at_sentences=False``), with the real policy; and classifier calls per
  stream.

    python benchmarks/middleware.py [--calls 300] [--streams 15] [--token-ms 1] [--policy default]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openai import OpenAI  # noqa: E402

from guardrail import Guard, Verdict, load_policy  # noqa: E402
from guardrail.policy import ClassifierSpec  # noqa: E402
from guardrail.testing import FakeClassifier  # noqa: E402
from tests.fake_upstream import (  # noqa: E402
    BASIL_ANSWER,
    BASIL_QUESTION,
    FakeUpstream,
    chat_reply,
    chat_stream,
)

RESULTS = ROOT / "benchmarks" / "results" / "middleware.json"
CHAT = "/v1/chat/completions"
QUESTION = BASIL_QUESTION
ANSWER = (
    BASIL_ANSWER + " "
    "Water it when the top of the soil feels dry, and give it a little liquid feed every few "
    "weeks in summer. Harvest from the top, just above a pair of leaves, and the plant will "
    "branch and grow bushier. With a little care one plant can last the whole season. "
    "Thai basil and lemon basil need the same care as the common sweet kind. "
    "Enjoy your basil in salads, pasta, soups and, of course, fresh pesto."
)


def _messages(i: int) -> list[dict[str, str]]:
    # Every call gets different text: the guard caches language detection per exact string,
    # and a benchmark that repeats one text would measure the cache.
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"{QUESTION} I have {i + 2} pots of it."},
    ]


def _answer(i: int, length: int | None = None) -> str:
    text = f"With {i + 2} pots, here is what works. {ANSWER}"
    return text[:length] if length else text


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 0.5), 3),
        "p99_ms": round(_pct(values, 0.99), 3),
        "mean_ms": round(statistics.fmean(values), 3),
    }


def _guards(policy_name: str) -> tuple[Guard, Guard, FakeClassifier]:
    policy = load_policy(policy_name)
    fake = FakeClassifier()
    fake_policy = policy.model_copy(update={"classifier": ClassifierSpec(name="fake")})
    real = Guard(policy)
    real.check_prompt("warm up the classifier")  # model loading is not a per-call cost
    return Guard(fake_policy, classifier=fake), real, fake


def _recorder(sink: list[tuple[float, float]]) -> Callable[[Verdict, str], None]:
    def record(verdict: Verdict, stage: str) -> None:
        timings = verdict.timings
        sink.append((timings.get("total_ms", 0.0), timings.get("classify_ms", 0.0)))

    return record


def _paired(values: list[float], base: list[float], inside: list[float]) -> dict[str, float]:
    """Per round: added = wrapped - unwrapped; wrapper-only = added - time inside the guard."""
    added = [v - b for v, b in zip(values, base, strict=True)]
    own = [a - g for a, g in zip(added, inside, strict=True)]
    return {
        "added_p50_ms": round(_pct(added, 0.5), 3),
        "added_p99_ms": round(_pct(added, 0.99), 3),
        "wrapper_only_p50_ms": round(_pct(own, 0.5), 3),
        "wrapper_only_p99_ms": round(_pct(own, 0.99), 3),
    }


def bench_calls(up: FakeUpstream, policy_name: str, calls: int) -> dict[str, Any]:
    fake_guard, real_guard, _ = _guards(policy_name)
    sinks: dict[str, list[tuple[float, float]]] = {"fake": [], "policy": []}
    raw = OpenAI(base_url=up.base_url, api_key="k", max_retries=0)
    variants: dict[str, Any] = {
        "unwrapped": raw,
        "wrapped_fake_classifier": fake_guard.wrap(raw, on_verdict=_recorder(sinks["fake"])),
        "wrapped_policy": real_guard.wrap(raw, on_verdict=_recorder(sinks["policy"])),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    guard_ms: dict[str, list[float]] = {name: [] for name in variants}
    classify: list[float] = []
    for i in range(calls + 10):
        names = list(variants)
        names = names[i % 3 :] + names[: i % 3]  # rotate the order
        for name in names:
            # distinct text per variant too, or the second one would hit the first's cache
            k = 3 * i + list(variants).index(name)
            up.script(CHAT, chat_reply(_answer(k, 300)))
            for sink in sinks.values():
                sink.clear()
            t0 = time.perf_counter()
            variants[name].chat.completions.create(model="m", messages=_messages(k))
            elapsed = (time.perf_counter() - t0) * 1000
            if i < 10:  # the first rounds warm connections and caches
                continue
            times[name].append(elapsed)
            seen = sinks["fake"] + sinks["policy"]
            guard_ms[name].append(sum(total for total, _ in seen))
            if name == "wrapped_policy":
                classify.append(sum(c for _, c in seen))
    raw.close()
    out: dict[str, Any] = {name: _summary(values) for name, values in times.items()}
    for name in ("wrapped_fake_classifier", "wrapped_policy"):
        out[name].update(_paired(times[name], times["unwrapped"], guard_ms[name]))
        out[name]["inside_guard"] = _summary(guard_ms[name])
    out["wrapped_policy"]["classifier_only"] = _summary(classify)
    return out


def _stream_once(client: Any, up: FakeUpstream, i: int, delay: float) -> tuple[float, float]:
    answer = _answer(i)
    tokens = [answer[k : k + 4] for k in range(0, len(answer), 4)]
    up.script(CHAT, chat_stream(*tokens, chunk_delay_s=delay))
    t0 = time.perf_counter()
    first = None
    stream = client.chat.completions.create(model="m", messages=_messages(i), stream=True)
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - t0) * 1000, (end - t0) * 1000


def _stream_variants(raw: OpenAI, guard: Guard, checks: dict[str, int]) -> dict[str, Any]:
    def counter(name: str) -> Callable[[Verdict, str], None]:
        def count(verdict: Verdict, stage: str) -> None:
            # stream_chunk checks, plus a final check only when it ran the classifier anew
            if stage == "stream_chunk" or (stage == "post_call" and "total_ms" in verdict.timings):
                checks[name] = checks.get(name, 0) + 1

        return count

    return {
        "unwrapped": raw,
        "every_sentence": guard.wrap(
            raw, check_every=1, at_sentences=True, on_verdict=counter("every_sentence")
        ),
        "every_200_chars": guard.wrap(
            raw, check_every=200, at_sentences=False, on_verdict=counter("every_200_chars")
        ),
    }


def bench_streams(up: FakeUpstream, policy_name: str, runs: int, token_ms: float) -> dict[str, Any]:
    _, real_guard, _ = _guards(policy_name)
    raw = OpenAI(base_url=up.base_url, api_key="k", max_retries=0)
    checks: dict[str, int] = {}
    variants = _stream_variants(raw, real_guard, checks)
    first: dict[str, list[float]] = {n: [] for n in variants}
    total: dict[str, list[float]] = {n: [] for n in variants}
    for i in range(runs + 2):
        names = list(variants)
        names = names[i % 3 :] + names[: i % 3]
        for name in names:
            k = 3 * i + list(variants).index(name)
            f, t = _stream_once(variants[name], up, k, token_ms / 1000)
            if i >= 2:
                first[name].append(f)
                total[name].append(t)
    raw.close()
    base_first = _pct(first["unwrapped"], 0.5)
    base_total = _pct(total["unwrapped"], 0.5)
    chars = len(_answer(0))
    out: dict[str, Any] = {"chars": chars, "tokens": -(-chars // 4), "token_ms": token_ms}
    for name in variants:
        out[name] = {
            "first_token": _summary(first[name]),
            "end_to_end": _summary(total[name]),
            "extra_first_token_p50_ms": round(_pct(first[name], 0.5) - base_first, 3),
            "extra_end_to_end_p50_ms": round(_pct(total[name], 0.5) - base_total, 3),
        }
        if name in checks:
            out[name]["classifier_checks_per_stream"] = round(checks[name] / (runs + 2), 2)
    return out


def _print(calls: dict[str, Any], streams: dict[str, Any], policy: str) -> None:
    print(f"\nPer call (non-streamed chat completion), policy {policy!r}; ms")
    print(
        f"{'variant':24} {'p50':>7} {'p99':>7} {'added p50':>9} {'added p99':>9} "
        f"{'in guard p50':>12} {'wrapper p50':>11} {'wrapper p99':>11}"
    )
    for name in ("unwrapped", "wrapped_fake_classifier", "wrapped_policy"):
        row = calls[name]
        inside = row.get("inside_guard", {}).get("p50_ms", 0.0)
        print(
            f"{name:24} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} "
            f"{row.get('added_p50_ms', 0):9.2f} {row.get('added_p99_ms', 0):9.2f} "
            f"{inside:12.2f} {row.get('wrapper_only_p50_ms', 0):11.2f} "
            f"{row.get('wrapper_only_p99_ms', 0):11.2f}"
        )
    c = calls["wrapped_policy"]["classifier_only"]
    print(f"{'classifier only (policy)':24} {c['p50_ms']:7.2f} {c['p99_ms']:7.2f}")
    print(
        f"\nStreams: {streams['chars']} chars in {streams['tokens']} tokens, "
        f"one every {streams['token_ms']} ms"
    )
    print(
        f"{'variant':18} {'first p50':>10} {'first p99':>10} {'e2e p50':>9} {'e2e p99':>9} "
        f"{'+first p50':>11} {'+e2e p50':>9} {'checks':>7}"
    )
    for name in ("unwrapped", "every_sentence", "every_200_chars"):
        row = streams[name]
        print(
            f"{name:18} {row['first_token']['p50_ms']:10.1f} {row['first_token']['p99_ms']:10.1f} "
            f"{row['end_to_end']['p50_ms']:9.1f} {row['end_to_end']['p99_ms']:9.1f} "
            f"{row['extra_first_token_p50_ms']:11.1f} {row['extra_end_to_end_p50_ms']:9.1f} "
            f"{row.get('classifier_checks_per_stream', 0):7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls per variant")
    parser.add_argument("--streams", type=int, default=15, help="timed streams per variant")
    parser.add_argument("--token-ms", type=float, default=1.0, help="upstream delay per token")
    parser.add_argument("--policy", default="default", help="policy for the classification runs")
    args = parser.parse_args()
    with FakeUpstream() as up:
        calls = bench_calls(up, args.policy, args.calls)
        streams = bench_streams(up, args.policy, args.streams, args.token_ms)
    policy = load_policy(args.policy)
    result = {
        "policy": args.policy,
        "classifier": policy.classifier.name,
        "calls": args.calls,
        "per_call": calls,
        "streams": streams,
    }
    _print(calls, streams, args.policy)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
