"""The trained head of the ``embedded`` classifier: a small numpy MLP, saved as ``.npz`` + JSON.

Features are the 512 sentence-encoder numbers plus one role bit (1 for a response). One hidden
ReLU layer feeds one sigmoid output per head (``unsafe``, each trained category, ``refusal``);
each output is then calibrated with its own Platt scaling (``sigmoid(a * logit + b)``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guardrail.errors import ConfigError

__all__ = [
    "HEAD_FILE",
    "INJECTION",
    "MAIN",
    "META_FILE",
    "OUTSIDE",
    "Head",
    "load_head",
    "logit",
    "logit_mix",
    "save_head",
    "sigmoid",
]

# A head is two files, <stem>.npz (weights) and <stem>.json (metadata): the main head's stem,
# the outside head's (e5 features, for languages USE-m3 lacks) and the injection head's (a
# segment read against its document) beside it.
MAIN = "embedded_head"
OUTSIDE = "outside_head"
INJECTION = "injection_head"
HEAD_FILE = f"{MAIN}.npz"
META_FILE = f"{MAIN}.json"


@dataclass
class Head:
    """Weights and metadata of a trained head.

    Attributes:
        w1, b1: input -> hidden layer.
        w2, b2: hidden -> one logit per head.
        platt: (heads, 2) calibration: probability = sigmoid(a * logit + b).
        heads: output names, e.g. ``("unsafe", "hate", ..., "refusal")``.
        meta: training metadata (version, data, seed, options, dev figures).
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    platt: np.ndarray
    heads: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The head's version string (from its metadata)."""
        return str(self.meta.get("version", "unknown"))

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated logits, shape (n, heads)."""
        hidden = np.maximum(x @ self.w1 + self.b1, 0.0)
        out: np.ndarray = hidden @ self.w2 + self.b2
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n, heads)."""
        return sigmoid(self.logits(x) * self.platt[:, 0] + self.platt[:, 1])


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, its argument clipped to +-30 (no overflow, p within 1e-13 of 0/1)."""
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
    return out


def logit(p: np.ndarray) -> np.ndarray:
    """The inverse of ``sigmoid`` for probabilities, clipped to [1e-6, 1 - 1e-6] first."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)))


def logit_mix(p: np.ndarray, q: np.ndarray, w: float) -> np.ndarray:
    """Two probabilities blended in logit space, weight ``w`` on ``q``: ``sigmoid((1 - w)
    logit(p) + w logit(q))`` (the classifier's e5 and nearest-neighbour blends)."""
    return sigmoid((1 - w) * logit(p) + w * logit(q))


def features(embeddings: np.ndarray, is_response: np.ndarray) -> np.ndarray:
    """The head's input: embeddings with the role bit appended, float32 (n, 513)."""
    role = np.asarray(is_response, dtype=np.float32).reshape(-1, 1)
    return np.hstack([np.asarray(embeddings, dtype=np.float32), role])


def save_head(head: Head, directory: Path, stem: str = MAIN) -> None:
    """Write ``<stem>.npz`` and ``<stem>.json`` (``embedded_head.*``) into ``directory``."""
    npz, meta_path = directory / f"{stem}.npz", directory / f"{stem}.json"
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "w1": head.w1.astype(np.float32),
        "b1": head.b1.astype(np.float32),
        "w2": head.w2.astype(np.float32),
        "b2": head.b2.astype(np.float32),
        "platt": head.platt.astype(np.float32),
    }
    # np.savez_compressed stores no timestamps, so equal weights give equal files.
    np.savez_compressed(npz, allow_pickle=False, **arrays)
    meta = {**head.meta, "heads": list(head.heads)}
    meta_path.write_text(
        json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def load_head(directory: Path, stem: str = MAIN) -> Head:
    """Load a head saved by ``save_head`` (with the same ``stem``).

    Raises:
        ConfigError: the files are missing or do not fit together.
    """
    npz, meta_path = directory / f"{stem}.npz", directory / f"{stem}.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("w1", "b1", "w2", "b2", "platt")}
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(
            f"cannot load the embedded classifier's head from {directory}: {e}"
        ) from e
    heads = tuple(str(h) for h in meta.get("heads", ()))
    if arrays["w2"].shape[1] != len(heads) or arrays["platt"].shape != (len(heads), 2):
        raise ConfigError(f"{directory}: head weights do not match the {len(heads)} head names")
    return Head(heads=heads, meta=meta, **arrays)
