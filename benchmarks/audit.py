"""Auditor cost: rows/s and peak memory of `guardrail audit` as the input grows.

* ``no-op`` runs score with a classifier that returns 0 at once and keeps nothing, so what is
  measured is the auditor's own cost: reading, preparing rows, the Guard pipeline around the classifier, writing and
  committing Parquet parts, merging. 10k, 100k and 1M generated short rows. The rows carry a
  language column, as audited data sets often do, so language detection is skipped; one extra
  10k run without it shows what detection adds.
* ``embedded`` runs the same auditor over 10k rows with the embedded classifier, and the same
  texts once more through bare ``Guard.check_many`` batches (no reading or writing): the
  difference is the auditor's overhead on top of classification.

Every run is its own process, so its peak RSS (``ru_maxrss``) is its own.

    nice -n 10 python benchmarks/audit.py [--sizes 10000,100000,1000000] [--embedded-rows 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardrail.types import Sample, ScoreSet  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "audit.json"
BATCH = 256

WORDS = [
    "the",
    "a",
    "river",
    "garden",
    "quick",
    "small",
    "blue",
    "report",
    "weather",
    "train",
    "music",
    "coffee",
    "window",
    "market",
    "recipe",
    "holiday",
    "letter",
    "museum",
    "bicycle",
    "question",
    "answer",
    "story",
    "city",
    "mountain",
    "evening",
]
LANGS = ("en", "de", "fr", "es", "zh")


def _policy(classifier: str) -> dict[str, Any]:
    return {
        "name": f"bench-{classifier}",
        "classifier": {"name": classifier},
        "thresholds": {"prompt": {"unsafe": {"flag_at": 0.5, "block_at": 0.8}}},
    }


def generate(path: Path, rows: int) -> None:
    """Short distinct texts (8-14 words), one JSON object a line."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            n = 8 + i % 7
            words = [WORDS[(i * 7 + k * 13 + i // 97) % len(WORDS)] for k in range(n)]
            text = " ".join(words) + f" {i}"
            f.write(json.dumps({"id": f"r{i}", "text": text, "lang": LANGS[i % 5]}) + "\n")


class NoOpClassifier:
    """Scores everything 0 instantly and keeps nothing (FakeClassifier records every call)."""

    name = "noop"

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        return [ScoreSet(unsafe=0.0, language=s.language, classifier="noop") for s in samples]


def child(args: argparse.Namespace) -> None:
    """One measured run in this process; prints a JSON line."""
    from guardrail.adapters.audit import AuditConfig, FieldSpec, run_audit

    from guardrail import Guard, Policy

    policy = Policy.model_validate(_policy(args.classifier))
    noop = NoOpClassifier() if args.classifier == "fake" else None
    fields = FieldSpec(id_field="id", language_field=None if args.detect else "lang")
    src, out = Path(args.input), Path(args.out)
    result: dict[str, Any] = {}
    if args.bare:
        guard = Guard(policy)
        guard.check_many(["warm up"])
        rows = [json.loads(line) for line in src.open(encoding="utf-8")]
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            chunk = rows[i : i + BATCH]
            guard.check_many([r["text"] for r in chunk], languages=[r["lang"] for r in chunk])
        elapsed = time.perf_counter() - started
        result = {"rows": len(rows), "elapsed_s": elapsed}
    else:
        guard = Guard(policy, classifier=noop)
        guard.check_many(["warm up"])  # model loading is not the auditor's cost
        config = AuditConfig(
            input=src, out=out, fields=fields, batch_size=BATCH, progress=False, overwrite=True
        )
        summary = run_audit(config, guard=guard)
        result = {"rows": summary.rows, "elapsed_s": summary.elapsed_s}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(src: Path, out: Path, classifier: str, *, detect: bool = False, bare: bool = False):
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--input",
        str(src),
        "--out",
        str(out),
        "--classifier",
        classifier,
    ]
    cmd += ["--detect"] if detect else []
    cmd += ["--bare"] if bare else []
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rows_per_s"] = result["rows"] / result["elapsed_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--embedded-rows", type=int, default=10_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--classifier", default="fake", help=argparse.SUPPRESS)
    parser.add_argument("--detect", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in [int(s) for s in args.sizes.split(",")]:
            src = folder / f"in_{size}.jsonl"
            generate(src, size)
            runs.append(
                {"run": f"no-op, {size:,} rows", **measure(src, folder / "o.parquet", "fake")}
            )
            print(_line(runs[-1]), flush=True)
            if size == 10_000:
                detected = measure(src, folder / "o.parquet", "fake", detect=True)
                runs.append({"run": "no-op, 10,000 rows, language detected", **detected})
                print(_line(runs[-1]), flush=True)
            src.unlink()
        src = folder / "in_embedded.jsonl"
        generate(src, args.embedded_rows)
        n = f"{args.embedded_rows:,}"
        audited = measure(src, folder / "o.parquet", "embedded")
        runs.append({"run": f"embedded, {n} rows, audit", **audited})
        print(_line(runs[-1]), flush=True)
        bare = measure(src, folder / "o.parquet", "embedded", bare=True)
        runs.append({"run": f"embedded, {n} rows, bare check_many", **bare})
        print(_line(runs[-1]), flush=True)
    overhead = (audited["elapsed_s"] - bare["elapsed_s"]) / bare["elapsed_s"]
    fake_10k = runs[0]["elapsed_s"] / runs[0]["rows"]
    emb_row = bare["elapsed_s"] / bare["rows"]
    report = {
        "batch_size": BATCH,
        "runs": runs,
        "embedded_audit_overhead_vs_bare": overhead,
        "fake_cost_per_row_over_embedded_cost_per_row": fake_10k / emb_row,
        "peak_rss_growth_10k_to_largest": runs[-3]["peak_rss_mb"] / runs[0]["peak_rss_mb"]
        if len(runs) > 4
        else None,
    }
    print(_table(runs))
    print(f"auditor overhead over bare classification (embedded, same rows): {overhead:+.1%}")
    print(f"auditor's own cost per row / embedded classification per row: {fake_10k / emb_row:.1%}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def _line(r: dict[str, Any]) -> str:
    return f"  {r['run']}: {r['rows_per_s']:,.0f} rows/s, peak RSS {r['peak_rss_mb']:,.0f} MB"


def _table(runs: list[dict[str, Any]]) -> str:
    lines = [
        f"| {'run':44} | {'rows':>9} | {'seconds':>8} | {'rows/s':>8} | {'peak RSS MB':>11} |",
        f"|{'-' * 46}|{'-' * 11}|{'-' * 10}|{'-' * 10}|{'-' * 13}|",
    ]
    for r in runs:
        lines.append(
            f"| {r['run']:44} | {r['rows']:>9,} | {r['elapsed_s']:>8.1f} | "
            f"{r['rows_per_s']:>8,.0f} | {r['peak_rss_mb']:>11,.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
