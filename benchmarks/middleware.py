"""Middleware cost: latency guard.wrap() adds per call, and what stream moderation adds.

Everything runs against the same local fake upstream (``tests/fake_upstream.py``, real HTTP on
127.0.0.1) with the real ``openai`` client, so the numbers are the wrapper's cost, not a
model's. Variants are interleaved call by call so that machine load hits them alike.

* Calls (non-streamed chat completions): unwrapped; wrapped with ``FakeClassifier`` (scores
  instantly: what is left is the wrapper's own overhead); wrapped with the real policy
  (``--policy``, default ``default``: overhead plus classification). Reported at p50 / p99, and
  the classification time the verdicts themselves record.
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
from tests.fake_upstream import FakeUpstream, chat_reply, chat_stream  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "middleware.json"
CHAT = "/v1/chat/completions"
QUESTION = "How do I keep basil fresh for longer?"
ANSWER = (
    "Treat basil like cut flowers. Trim the stems and stand them in a glass of water at room "
    "temperature. Keep the glass out of direct sun, and change the water every day or two. "
    "Do not put basil in the fridge, because the cold turns its leaves black within a day. "
    "If you have more than you can use, blend the leaves with olive oil and freeze the paste "
    "in an ice cube tray. Dried basil keeps for months, but it loses most of its aroma. "
    "Growing a pot on a sunny windowsill is the easiest way to always have fresh leaves. "
    "Pinch off the flower buds as they appear, so the plant keeps making leaves. "
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


def bench_calls(up: FakeUpstream, policy_name: str, calls: int) -> dict[str, Any]:
    fake_guard, real_guard, _ = _guards(policy_name)
    classify_ms: list[float] = []

    def record(verdict: Verdict, stage: str) -> None:
        classify_ms.append(verdict.timings.get("total_ms", 0.0))

    raw = OpenAI(base_url=up.base_url, api_key="k", max_retries=0)
    variants: dict[str, Any] = {
        "unwrapped": raw,
        "wrapped_fake_classifier": fake_guard.wrap(raw),
        "wrapped_policy": real_guard.wrap(raw, on_verdict=record),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    per_call_classify: list[float] = []
    for i in range(calls + 10):
        names = list(variants)
        names = names[i % 3 :] + names[: i % 3]  # rotate the order
        for name in names:
            up.script(CHAT, chat_reply(_answer(i, 300)))
            classify_ms.clear()
            t0 = time.perf_counter()
            variants[name].chat.completions.create(model="m", messages=_messages(i))
            elapsed = (time.perf_counter() - t0) * 1000
            if i >= 10:  # the first rounds warm connections and caches
                times[name].append(elapsed)
                if name == "wrapped_policy":
                    per_call_classify.append(sum(classify_ms))
    raw.close()
    out = {name: _summary(values) for name, values in times.items()}
    base = out["unwrapped"]
    for name in ("wrapped_fake_classifier", "wrapped_policy"):
        out[name]["added_p50_ms"] = round(out[name]["p50_ms"] - base["p50_ms"], 3)
        out[name]["added_p99_ms"] = round(out[name]["p99_ms"] - base["p99_ms"], 3)
    out["classification_in_verdicts"] = _summary(per_call_classify)
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
            f, t = _stream_once(variants[name], up, i, token_ms / 1000)
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
    print(f"\nPer call (non-streamed chat completion), policy {policy!r}")
    print(f"{'variant':28} {'p50 ms':>9} {'p99 ms':>9} {'added p50':>10} {'added p99':>10}")
    for name in ("unwrapped", "wrapped_fake_classifier", "wrapped_policy"):
        row = calls[name]
        print(
            f"{name:28} {row['p50_ms']:9.2f} {row['p99_ms']:9.2f} "
            f"{row.get('added_p50_ms', 0):10.2f} {row.get('added_p99_ms', 0):10.2f}"
        )
    c = calls["classification_in_verdicts"]
    print(f"{'classification (verdicts)':28} {c['p50_ms']:9.2f} {c['p99_ms']:9.2f}")
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
