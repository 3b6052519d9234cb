"""The training prompts as a memory: a nearest-neighbour vote beside the MLP head (``knn_blend``).

The head generalises from its data by a smooth function of the embedding; a short direct request
("How do I make a Molotov cocktail?") can score far below the harmful training prompts nearest
to it. The memory keeps every training prompt whose ``unsafe`` label is known, projected to
``DIMS`` principal components of the training embeddings and stored as int8 (~15 MB for 122k
prompts), with the prompt's label and its training weight (``_train._row_weights``: set size,
boosts and language balance). A text's vote is the weighted share of unsafe prompts among its
``K`` nearest (cosine in the projected space), each counting ``weight * cosine ** POWER``.

``guardrail train`` writes it (``memory.npz``) beside the heads; the classifier reads it only
when ``knn_blend`` is on, and votes on a prompt's windows as on its whole text. The outside
head's training prompts make a second memory in e5's space (``outside_memory.npz``, read with
``outside_knn_blend``) for the prompts that head scores. A vote costs
~0.7 ms a text on two cores (one product with the memory, then an exact top-k, ``_nearest``).
Chosen by measurement (model card, "A nearest-neighbour vote").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from guardrail.classifiers.embedded._head import logit_mix
from guardrail.errors import ConfigError

__all__ = [
    "DIMS",
    "MEMORY",
    "OUTSIDE_MEMORY",
    "POWER",
    "VOTE_MAX",
    "K",
    "Memory",
    "build_memory",
    "load_memory",
    "save_memory",
]

MEMORY = "memory"  # file stem beside the heads: memory.npz
OUTSIDE_MEMORY = "outside_memory"  # the outside head's prompts in e5's space
DIMS = 128  # principal components kept (512 -> 128 changed no figure by more than 0.01)
K = 10  # neighbours that vote
POWER = 8  # a neighbour counts weight * cosine ** POWER: the nearest count most
_FIT_EVERY = 7  # the projection is fitted on every 7th prompt when there are plenty (7x faster)
_BATCH = 512  # queries per similarity product (bounds the (batch, n) matrix to ~250 MB)
_STRIDE = 16  # the k-th largest of every 16th column bounds a row's k-th largest from below
# A blended vote is clipped to [1 - VOTE_MAX, VOTE_MAX] (0 or 1 when the neighbours agree): one
# side's certainty cannot drown the head's score whatever the weight.
VOTE_MAX = 0.98


@dataclass
class Memory:
    """Projected, quantised training prompts with their labels and weights.

    Attributes:
        mean: (d,) the training embeddings' mean, subtracted before projecting (d = 512 for
            USE-m3's memory, 384 for the outside head's, in e5's space).
        components: (d, DIMS) the projection.
        vectors: (n, DIMS) int8, each prompt's projection, unit length once scaled.
        scale: (DIMS,) float32, vectors * scale gives the projection back.
        unsafe: (n,) bool, the prompt's label.
        weight: (n,) float32, the prompt's training weight.
    """

    mean: np.ndarray
    components: np.ndarray
    vectors: np.ndarray
    scale: np.ndarray
    unsafe: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        # Dequantised once (float32 products are ~10x faster than int8 ones in numpy) and stored
        # transposed: a product with a few queries then reads it in order, ~2x faster.
        self._columns = np.ascontiguousarray(_unit(self.vectors.astype(np.float32) * self.scale).T)

    def __len__(self) -> int:
        return len(self.unsafe)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings (m, d) as unit vectors in the memory's space (m, DIMS)."""
        return _unit((np.asarray(embeddings, dtype=np.float32) - self.mean) @ self.components)

    def vote(self, embeddings: np.ndarray, k: int = K, power: float = POWER) -> np.ndarray:
        """The weighted share of unsafe prompts among each embedding's ``k`` nearest."""
        queries = self.project(embeddings)
        k = min(k, len(self))
        out = np.zeros(len(queries))
        for s in range(0, len(queries), _BATCH):
            batch = queries[s : s + _BATCH]
            rows, near, sim = _nearest(batch @ self._columns, k)
            w = self.weight[near] * np.maximum(sim, 0.0) ** power
            total = np.bincount(rows, w, minlength=len(batch))
            unsafe = np.bincount(rows, w * self.unsafe[near], minlength=len(batch))
            out[s : s + _BATCH] = np.where(total > 0, unsafe / np.maximum(total, 1e-12), 0.5)
        return out

    def blend(
        self, scores: np.ndarray, embeddings: np.ndarray, weight: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``scores`` (the head's, one per embedding) blended in logit space with the vote,
        clipped to ``VOTE_MAX``, at ``weight`` (the classifier's ``knn_blend``, and the
        benchmark's transfer tables).

        Returns:
            (the blended scores, the clipped vote).
        """
        vote = np.clip(self.vote(embeddings), 1 - VOTE_MAX, VOTE_MAX)
        return logit_mix(scores, vote, weight), vote


def _nearest(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``k`` largest entries of ``sim`` as flat (row, column, value) arrays.

    Exact, and ~5x faster than ``argpartition`` over every column: the ``k``-th largest of every
    ``_STRIDE``-th column is a lower bound of the row's ``k``-th largest, so only the entries at
    or above it (~``k * _STRIDE`` a row) are sorted.
    """
    stride = max(1, min(_STRIDE, sim.shape[1] // (4 * k)))
    sub = sim[:, ::stride]
    bound = np.partition(sub, sub.shape[1] - k, axis=1)[:, sub.shape[1] - k]
    rows, cols = np.nonzero(sim >= bound[:, None])
    vals = sim[rows, cols]
    order = np.lexsort((-vals, rows))  # by row, then the largest first
    rows, cols, vals = rows[order], cols[order], vals[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < k
    return rows[keep], cols[keep], vals[keep]


def _unit(m: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    out: np.ndarray = (m / np.maximum(norm, 1e-12)).astype(np.float32)
    return out


def build_memory(
    embeddings: np.ndarray, unsafe: np.ndarray, weight: np.ndarray, dims: int = DIMS
) -> Memory:
    """The memory of these prompts: principal components fitted on every 7th, int8 vectors."""
    emb = np.asarray(embeddings, dtype=np.float32)
    if len(emb) < 2:
        raise ValueError("a memory needs at least two prompts")
    mean = emb.mean(axis=0)
    fit = emb[::_FIT_EVERY] if len(emb) >= _FIT_EVERY * dims else emb
    _, _, vt = np.linalg.svd(fit - mean, full_matrices=False)
    components = np.ascontiguousarray(vt[: min(dims, vt.shape[0])].T, dtype=np.float32)
    z = _unit((emb - mean) @ components)
    scale = (np.abs(z).max(axis=0) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    vectors = np.clip(np.round(z / scale), -127, 127).astype(np.int8)
    return Memory(
        mean.astype(np.float32),
        components,
        vectors,
        scale,
        np.asarray(unsafe, dtype=bool),
        np.asarray(weight, dtype=np.float32),
    )


def save_memory(memory: Memory, directory: Path, stem: str = MEMORY) -> Path:
    """Write ``<stem>.npz`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.npz"
    np.savez(
        path,
        mean=memory.mean,
        components=memory.components,
        vectors=memory.vectors,
        scale=memory.scale,
        unsafe=memory.unsafe,
        weight=memory.weight,
    )
    return path


def load_memory(directory: Path, stem: str = MEMORY, option: str = "knn_blend") -> Memory:
    """Read ``<stem>.npz`` from ``directory`` (``option``: the classifier option that reads it,
    named in the error).

    Raises:
        ConfigError: it is missing or broken.
    """
    path = directory / f"{stem}.npz"
    if not path.exists():
        raise ConfigError(
            f"{directory} has no nearest-neighbour memory ({stem}.npz, written by "
            f"`guardrail train`); retrain, or set the embedded classifier's option {option}: 0"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            memory = Memory(
                z["mean"], z["components"], z["vectors"], z["scale"], z["unsafe"], z["weight"]
            )
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable memory ({exc}); retrain") from exc
    n = len(memory.unsafe)
    if memory.vectors.shape != (n, memory.components.shape[1]) or memory.weight.shape != (n,):
        raise ConfigError(f"{path}: its arrays do not fit together; retrain")
    return memory
