"""Cross-lingual transfer for ``benchmarks/accuracy.py``: leave one mhc language out.

For each of mhc's 10 languages, the head is retrained without any training row in that language
(mhc, cold, xquad ... alike) and scored on that language's mhc dev rows; the in-language figure
is the same recipe trained on everything. Both use the same (shortened) training config so the
difference is the held-out language alone. Texts are embedded once (cached).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _accuracy_metrics import metrics

from guardrail._data import Row
from guardrail.classifiers.embedded._embedding import EmbeddingCache, encoder_tag, get_text_encoder
from guardrail.classifiers.embedded._head import features
from guardrail.classifiers.embedded._train import TrainConfig, fit_calibrated

MHC_LANGUAGES = ("ar", "de", "es", "fr", "hi", "it", "nl", "pl", "pt", "zh")
# The encoder's languages; hi is the one mhc language it was not trained on.
COVERED = {"ar", "de", "es", "fr", "it", "nl", "pl", "pt", "zh"}


def leave_one_language_out(
    train: list[Row], dev: list[Row], threshold: float, epochs: int = 8
) -> dict[str, Any]:
    """Held-out vs in-language F1 and PR-AUC on each mhc language's dev rows."""
    # float32 numpy: training embeddings, and so the shipped head, do not depend on the CPU.
    encoder = get_text_encoder("numpy")
    cache = EmbeddingCache(Path(".cache/embeddings") / f"{encoder_tag(encoder)}.npz", encoder)

    def embed(rows: list[Row]) -> np.ndarray:
        vectors = cache.embed([r.text for r in rows], progress=False)
        return features(vectors, np.array([r.role == "response" for r in rows]))

    config = replace(TrainConfig(), epochs=epochs)
    x_train = embed(train)
    full, _ = fit_calibrated(x_train, train, config)
    out: dict[str, Any] = {"config": {"epochs": epochs, "threshold": threshold}, "languages": {}}
    for lang in MHC_LANGUAGES:
        rows = [r for r in dev if r.source == "mhc" and r.lang == lang]
        x, y = embed(rows), np.array([r.unsafe for r in rows])
        keep = np.array([r.lang != lang for r in train])
        held, _ = fit_calibrated(
            x_train[keep], [r for r, k in zip(train, keep, strict=True) if k], config
        )
        result = {}
        for name, head in (("in_language", full), ("held_out", held)):
            score = head.predict(x)[:, 0]
            m = metrics(y, score >= threshold, score)
            result[name] = {"f1": m["f1"], "pr_auc": m["pr_auc"], "fpr": m["fpr"]}
        gap = result["in_language"]["f1"] - result["held_out"]["f1"]
        result.update(n=len(rows), gap=gap, covered=lang in COVERED)
        out["languages"][lang] = result
        print(
            f"  lolo {lang}: in={result['in_language']['f1']:.3f} held={result['held_out']['f1']:.3f}"
        )
    return out
