"""The encoder's matrix products in bfloat16 through torch (oneDNN), where the CPU has it natively.

On a CPU with AVX512-BF16 or AMX, oneDNN's bfloat16 products run at about twice float32's
rate (measured on this project's 2-core AMD EPYC box: 215 against 100 GFLOP/s a core), and
the products are most of the encoder's time. Inputs and weights are rounded to bfloat16
(8 significant bits); products accumulate in float32. The first convolutions' table sums are
one ``embedding_bag`` each over the float32 tables (exact). Everything else (layer norms,
residuals, pooling, the head) stays float32 numpy, and so does all of a micro-batch of fewer
than 32 token rows (a short prompt on its own), where torch's per-call cost is larger than
what bfloat16 saves. Embeddings keep a cosine above 0.9999 to the float32 reference (checked
in the tests and ``benchmarks/encoder.py``).

Threads: every product runs in the encoder's own worker threads, each held to one OpenMP
thread by calling ``omp_set_num_threads(1)`` of the OpenMP runtime torch loaded, from that
worker (a per-thread setting in OpenMP). ``torch.set_num_threads`` is not used: it also sets
MKL's process-wide count, which halved float32 torch products elsewhere in the process when we
tried it. Where that runtime can't be found (torch built with another OpenMP), the encoder uses
one worker and leaves torch's own intra-op threads alone. Either way the encoder never runs
more product threads than ``Encoder.threads``, however many threads call it.
"""

from __future__ import annotations

import ctypes
import glob
import os
from typing import Any

import numpy as np

from guardrail.classifiers.embedded._model import _CNN_DIM, _ORDERS, _PAD, NumpyKernels, Weights

__all__ = ["TorchKernels", "bf16_supported"]


def _torch() -> Any:
    import torch

    return torch


def bf16_supported() -> bool:
    """Whether torch is installed and this CPU runs oneDNN's bfloat16 products natively.

    Without native support torch emulates bfloat16 and the products get slower, not faster.
    """
    try:
        torch = _torch()
    except (ImportError, OSError, RuntimeError):  # absent, or installed but unloadable
        return False
    try:
        return bool(torch.backends.mkldnn.is_available()) and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


_BUCKET = 32
# Products with fewer rows run in float32 numpy: torch's fixed cost per call (~0.6 ms a
# micro-batch) is more than bfloat16 saves below ~32 tokens (measured on the 2-core box).
_MIN_ROWS = 32


def _bucket(rows: int) -> int:
    """``rows`` rounded up to a multiple of ``_BUCKET``."""
    return -(-rows // _BUCKET) * _BUCKET


def _omp_set_num_threads(torch: Any) -> Any:
    """``omp_set_num_threads`` of the libgomp bundled with torch, or None."""
    lib_dir = os.path.join(os.path.dirname(os.path.abspath(torch.__file__)), "lib")
    for path in sorted(glob.glob(os.path.join(lib_dir, "libgomp*.so*"))):
        try:
            setter = ctypes.CDLL(path).omp_set_num_threads
        except (OSError, AttributeError):
            continue
        setter.argtypes, setter.restype = [ctypes.c_int], None
        return setter
    return None


class TorchKernels:
    """bfloat16 products for ``_model.pool`` (see the module docstring)."""

    name = "torch-bf16"
    # The second convolutions stay one product per window and slot: as Winograd tiles (numpy's
    # way) they were ~5% faster here, but bfloat16's rounding, amplified by the tiles'
    # transforms, moved the head's scores by up to 0.015 (plain products: 0.005).
    winograd = False

    def __init__(self, w: Weights) -> None:
        torch = _torch()
        self._torch = torch
        self._bf16 = torch.bfloat16
        self._set_omp_threads = _omp_set_num_threads(torch)
        self._small = NumpyKernels(w)

        def to_bf16(a: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(a)).to(torch.bfloat16)

        self._proj_w = to_bf16(w.proj_w)
        self._first = [to_bf16(first_w) for first_w in w.first_w]
        self._second = [to_bf16(w2) for _, _, w2, _ in w.conv]
        self._slots = [torch.from_numpy(table) for table in w.slots]
        self._bag = torch.nn.functional.embedding_bag

    def project(self, emb: np.ndarray) -> np.ndarray:
        if emb.shape[0] < _MIN_ROWS:
            return self._small.project(emb)
        return self._times(emb, self._proj_w)

    def windowed(self, src: np.ndarray, branch: int) -> np.ndarray:
        order, left = _ORDERS[branch]
        rows = src.shape[0] - 2 * _PAD
        if rows < _MIN_ROWS:
            return self._small.windowed(src, branch)
        with self._torch.inference_mode():
            half = self._padded(src, _bucket(rows) - rows)
            # Row t of the windows is src rows t + _PAD - left ... + order - 1, which are
            # contiguous: the windows are an overlapping view, copied once inside the product.
            windows = half.as_strided(
                (_bucket(rows), order * _CNN_DIM), (_CNN_DIM, 1), (_PAD - left) * _CNN_DIM
            )
            y = windows @ self._second[branch]
            out: np.ndarray = y[:rows].float().numpy()
        return out

    def slot_sums(self, index: np.ndarray, branch: int) -> np.ndarray:
        """One ``embedding_bag`` over the float32 table (shared with numpy, not copied)."""
        if index.shape[0] < _MIN_ROWS:  # numpy only in the caller's thread (needs_workers)
            return self._small.slot_sums(index, branch)
        with self._torch.inference_mode():
            y = self._bag(self._torch.from_numpy(index), self._slots[branch], mode="sum")
            out: np.ndarray = y.numpy()
        return out

    def spread(self, x: np.ndarray, branch: int) -> np.ndarray:
        if x.shape[0] < _MIN_ROWS:
            return self._small.spread(x, branch)
        return self._times(x, self._first[branch])

    def _times(self, a: np.ndarray, weight: Any) -> np.ndarray:
        """``a @ weight`` in bfloat16, float32 out (rows bucketed, see ``_padded``)."""
        rows = a.shape[0]
        with self._torch.inference_mode():
            buf = self._padded(a, _bucket(rows) - rows)
            out: np.ndarray = (buf @ weight)[:rows].float().numpy()
        return out

    def _padded(self, a: np.ndarray, extra: int) -> Any:
        """``a`` in bfloat16 with ``extra`` zero rows appended.

        The products' row counts are rounded up to a multiple of ``_BUCKET``: oneDNN builds
        (JIT-compiles) a kernel per shape and caches ~1024, and every micro-batch has another
        row count, so unrounded shapes would miss that cache on most calls.
        """
        buf = self._torch.empty((a.shape[0] + extra, a.shape[1]), dtype=self._bf16)
        buf[: a.shape[0]].copy_(self._torch.from_numpy(a))
        buf[a.shape[0] :].zero_()
        return buf

    def needs_workers(self, rows: int) -> bool:
        """Micro-batches below ``_MIN_ROWS`` rows run numpy only, so any thread may run them."""
        return rows >= _MIN_ROWS

    def workers(self, threads: int) -> int:
        """Workers for ``threads`` threads: one per thread, or one if OpenMP can't be set."""
        return threads if self._set_omp_threads is not None else 1

    def thread_setup(self) -> None:
        """One OpenMP thread in this worker (the encoder parallelises over micro-batches)."""
        if self._set_omp_threads is not None:
            self._set_omp_threads(1)
