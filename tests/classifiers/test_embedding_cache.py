"""The training embedding cache keeps what it embedded when a run stops early."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from guardrail.classifiers.embedded._embedding import EmbeddingCache


class CountingEncoder:
    """Deterministic 4-d vectors from the text; fails on the batch numbered ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.batches = 0
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.batches == self.fail_at:
            raise KeyboardInterrupt
        self.batches += 1
        self.texts.extend(texts)
        return np.array([[len(t), ord(t[0]), ord(t[-1]), 1.0] for t in texts], dtype=np.float32)


TEXTS = [f"text number {i}" for i in range(10)]


def test_interrupted_embedding_is_kept_and_resumed(tmp_path):
    path = tmp_path / "cache.npz"
    with pytest.raises(KeyboardInterrupt):
        EmbeddingCache(path, CountingEncoder(fail_at=2)).embed(TEXTS, batch_size=3, progress=False)
    assert path.exists()  # the two finished batches were written before the error went on

    resumed = CountingEncoder()
    got = EmbeddingCache(path, resumed).embed(TEXTS, batch_size=3, progress=False)
    assert resumed.texts == TEXTS[6:]  # only what the first run had not embedded
    assert np.array_equal(got, CountingEncoder().embed(TEXTS))


def test_long_runs_write_checkpoints(tmp_path, monkeypatch):
    path = tmp_path / "cache.npz"
    cache = EmbeddingCache(path, CountingEncoder(), checkpoint_seconds=0.0)
    writes: list[int] = []
    save = cache.save
    monkeypatch.setattr(cache, "save", lambda: (writes.append(1), save())[1])
    cache.embed(TEXTS, batch_size=4, progress=False)
    assert len(writes) == 4  # after each of the 3 batches, then the final write
    assert np.array_equal(EmbeddingCache(path, CountingEncoder()).embed(TEXTS), cache.embed(TEXTS))


def test_a_complete_run_writes_once(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path / "cache.npz", CountingEncoder())
    writes: list[int] = []
    save = cache.save
    monkeypatch.setattr(cache, "save", lambda: (writes.append(1), save())[1])
    cache.embed(TEXTS, batch_size=4, progress=False)
    cache.embed(TEXTS, batch_size=4, progress=False)  # all cached: nothing to write
    assert writes == [1]
