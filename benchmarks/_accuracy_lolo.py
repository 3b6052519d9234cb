"""Transfer tables for ``benchmarks/accuracy.py --transfer``: leave one language / source out.

For each held-out group (a language, or a data set), a head is retrained without any training
row of that group and scored on the group's dev rows; the "in" figure is the same recipe trained
on every training row. Both use the same (shortened) training config, so the difference is the
held-out group alone. Texts are embedded once into the embedding cache that ``guardrail train``
uses (``.cache/embeddings`` under the repository root), so a second run only retrains heads.

The recipe is whatever ``guardrail/classifiers/embedded/_train.py`` ships at run time
(``recipe_rows`` and ``fit_calibrated`` with ``TrainConfig``), so the tables follow the head
being trained.

With ``knn_blend`` > 0 (the policy's nearest-neighbour vote, ``_memory.py``) each head gets the
memory of its own training prompts (``fit_memory``: the held-out head's memory lacks the group
too), and the tables add ``in_vote`` and ``held_out_vote``: a covered prompt's score blended with
its memory's vote as the classifier does (whole texts; answers and other languages unblended).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _accuracy_metrics import metrics

from guardrail._data import Row
from guardrail.classifiers.embedded._embedding import EmbeddingCache, encoder_tag, get_text_encoder
from guardrail.classifiers.embedded._head import features
from guardrail.classifiers.embedded._memory import Memory
from guardrail.classifiers.embedded._train import (
    TrainConfig,
    fit_calibrated,
    fit_memory,
    recipe_rows,
)

ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = ROOT / ".cache" / "embeddings"
# Thresholds at which every held-out group's figure is also given (``threshold_sweep``).
SWEEP_THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5)
# Languages held out: those with at least this many dev rows.
MIN_DEV_ROWS = 200


def covered_languages() -> frozenset[str]:
    """The encoder's languages, as the embedded classifier declares them."""
    import guardrail.classifiers.embedded as embedded

    return frozenset(getattr(embedded, "ENCODER_LANGUAGES", ()))


class _Embedder:
    def __init__(self) -> None:
        # float32 numpy: training embeddings, and so the heads, do not depend on the CPU.
        encoder = get_text_encoder("numpy")
        self.cache = EmbeddingCache(CACHE_DIR / f"{encoder_tag(encoder)}.npz", encoder)

    def __call__(self, rows: Sequence[Row]) -> np.ndarray:
        vectors = self.cache.embed([r.text for r in rows], progress=True)
        return features(vectors, np.array([r.role == "response" for r in rows]))


def _figures(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, Any]:
    m = metrics(y, score >= threshold, score)
    return {k: m[k] for k in ("n", "pos", "precision", "recall", "f1", "fpr", "pr_auc")}


def voted(
    score: np.ndarray, x: np.ndarray, rows: Sequence[Row], memory: Memory, weight: float
) -> np.ndarray:
    """``score`` with each covered prompt's blended with ``memory``'s vote at ``weight`` (``x``:
    the rows' head features, the embedding and the role bit)."""
    covered = covered_languages()
    mask = np.array([r.role == "prompt" and r.lang in covered for r in rows], dtype=bool)
    out = np.asarray(score, dtype=float).copy()
    if mask.any():
        out[mask] = memory.blend(out[mask], x[mask, :-1], weight)[0]
    return out


def _headline(m: dict[str, Any]) -> tuple[str, float | None]:
    """The figure that means something for the group: F1 with both labels, else recall / FPR."""
    if m["pos"] and m["pos"] < m["n"]:
        return "f1", m["f1"]
    return ("recall", m["recall"]) if m["pos"] else ("fpr", m["fpr"])


def leave_one_out(
    train: list[Row],
    dev: list[Row],
    key: Callable[[Row], str | None],
    groups: Sequence[str],
    threshold: float,
    covered: frozenset[str] | None = None,
    knn_blend: float = 0.0,
) -> dict[str, Any]:
    """Held-out vs in-distribution figures on each group's dev rows (``key(row) == group``),
    and with ``knn_blend`` > 0 the same with each head's memory voting."""
    from tqdm import tqdm

    embed = _Embedder()
    # The shipped recipe with one ensemble member (the shipped head averages several): a
    # held-out head and its in-distribution twin are trained alike, and K times faster.
    config = replace(TrainConfig(), ensemble=1)
    train = recipe_rows(train, config)  # with the form variants, as `guardrail train` fits
    x_train = embed(train)
    full, _ = fit_calibrated(x_train, train, config)
    full_memory = fit_memory(x_train, train, config) if knn_blend else None
    out: dict[str, Any] = {
        "config": {
            "recipe": "TrainConfig() with ensemble=1",
            "threshold": threshold,
            "knn_blend": knn_blend,
        },
        "groups": {},
    }
    for group in tqdm(groups, desc="leave one out", unit="head"):
        rows = [r for r in dev if key(r) == group]
        keep = np.array([key(r) != group for r in train])
        if not rows or keep.all():
            continue
        x, y = embed(rows), np.array([r.unsafe for r in rows])
        kept, x_kept = [r for r, k in zip(train, keep, strict=True) if k], x_train[keep]
        held, _ = fit_calibrated(x_kept, kept, config)
        scores = {name: head.predict(x)[:, 0] for name, head in (("in", full), ("held_out", held))}
        if full_memory is not None:
            held_memory = fit_memory(x_kept, kept, config)
            for name, memory in (("in", full_memory), ("held_out", held_memory)):
                scores[f"{name}_vote"] = voted(scores[name], x, rows, memory, knn_blend)
        result: dict[str, Any] = {
            name: _figures(y, score, threshold) for name, score in scores.items()
        }
        metric, held_value = _headline(result["held_out"])
        # The same figure at every swept threshold, held out and in (thresholds chosen by
        # held-out results: issue 18).
        for name, score in scores.items():
            result[f"{name}_by_threshold"] = {
                str(t): _figures(y, score, t)[metric] for t in SWEEP_THRESHOLDS
            }
        in_value = result["in"][metric]
        result.update(
            n=len(rows),
            metric=metric,
            in_value=in_value,
            held_value=held_value,
            # Positive gap = worse when held out (FPR rises, F1 / recall fall).
            gap=None
            if in_value is None or held_value is None
            else (held_value - in_value if metric == "fpr" else in_value - held_value),
        )
        if "held_out_vote" in scores:
            result["held_vote_value"] = result["held_out_vote"][metric]
        if covered is not None:
            result["covered"] = group in covered
        out["groups"][group] = result
    out["threshold_sweep"] = threshold_sweep(out["groups"])
    return out


def threshold_sweep(groups: dict[str, Any]) -> dict[str, Any]:
    """Per swept threshold, the mean held-out and in-distribution figure over the groups with
    both labels (F1), with only unsafe rows (recall) and with only safe rows (FPR), and the
    threshold with the best mean held-out F1 (and with the vote, where the groups have it)."""
    out: dict[str, Any] = {}
    sides = ["held_out", "in"]
    if groups and all("held_out_vote_by_threshold" in g for g in groups.values()):
        sides += ["held_out_vote", "in_vote"]
    for t in map(str, SWEEP_THRESHOLDS):
        line: dict[str, Any] = {}
        for metric in ("f1", "recall", "fpr"):
            for side in sides:
                values = [
                    g[f"{side}_by_threshold"][t]
                    for g in groups.values()
                    if g["metric"] == metric and g[f"{side}_by_threshold"][t] is not None
                ]
                line[f"{side}_{metric}"] = float(np.mean(values)) if values else None
            line[f"groups_{metric}"] = sum(g["metric"] == metric for g in groups.values())
        out[t] = line
    result: dict[str, Any] = {"by_threshold": out}
    for side in sides[::2]:  # held_out, held_out_vote
        f1 = {t: v[f"{side}_f1"] for t, v in out.items() if v[f"{side}_f1"] is not None}
        best = float(max(f1, key=lambda t: f1[t])) if f1 else None
        result["best_mean_held_out_f1" if side == "held_out" else "best_mean_vote_f1"] = best
    return result


def transfer_tables(
    train: list[Row], dev: list[Row], threshold: float, knn_blend: float = 0.0
) -> dict[str, Any]:
    """Leave-one-language-out over languages with enough dev rows, and leave-one-source-out
    (with each head's memory voting too when ``knn_blend`` > 0)."""
    counts: dict[str, int] = {}
    for r in dev:
        if r.lang:
            counts[r.lang] = counts.get(r.lang, 0) + 1
    languages = sorted(k for k, v in counts.items() if v >= MIN_DEV_ROWS)
    sources = sorted({r.source for r in dev})
    return {
        "languages": leave_one_out(
            train,
            dev,
            lambda r: r.lang,
            languages,
            threshold,
            covered=covered_languages(),
            knn_blend=knn_blend,
        ),
        "sources": leave_one_out(
            train, dev, lambda r: r.source, sources, threshold, knn_blend=knn_blend
        ),
    }
