"""Topic rails without retraining: is a text about one of the policy's topics?

Each topic is a short description and a few example phrases, in any language. Texts and topics
are embedded with the default classifier's multilingual sentence encoder; a text's raw
similarity to a topic is its highest cosine to the topic's description and examples. Raw cosines
mean different things for different topics (a broad topic sits closer to everything), so each
topic is calibrated against a fixed set of benign sentences on many subjects
(``background.txt``, shipped with the package): how far above everyday text a similarity lies,
in robust standard deviations of that topic's background similarities (median and MAD, so the
few background sentences that happen to be on the topic barely move it):

    z = (raw - median_background) / (1.4826 * MAD_background)
    score = 1 / (1 + exp(-(z - Z_MID)))          # 0.5 at Z_MID = 2.5 deviations

A threshold therefore means the same for every topic (0.5: 2.5 deviations above everyday text;
0.82: 4). Nothing is trained; changing a topic only re-embeds its phrases.
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from guardrail.policy import Topic

__all__ = ["Z_MID", "TopicScore", "TopicScorer", "background_sentences"]

#: Robust deviations above the background at which a topic score is 0.5.
Z_MID = 2.5
_MIN_SCALE = 0.01  # a topic whose background similarities barely vary still has a scale

Embed = Callable[[Sequence[str]], Any]


@cache
def background_sentences() -> tuple[str, ...]:
    """The shipped benign background (one sentence a line)."""
    path = Path(__file__).with_name("background.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@dataclass(frozen=True, slots=True)
class TopicScore:
    """One text against one topic."""

    topic: str
    raw: float  # highest cosine to the topic's description and examples
    z: float  # robust deviations above the background
    score: float  # calibrated, in [0, 1]


@dataclass(frozen=True, slots=True)
class _Calibrated:
    topic: Topic
    vectors: np.ndarray  # (k, d), description and examples
    median: float
    scale: float

    def z(self, raw: float) -> float:
        return (raw - self.median) / self.scale

    def score(self, raw: float) -> float:
        return float(1.0 / (1.0 + math.exp(-(self.z(raw) - Z_MID))))


class TopicScorer:
    """Scores texts against topics with a sentence encoder; calibrated on first use.

    Args:
        topics: the topics (banned and allowed ones alike).
        embed: texts -> L2-normalised vectors (n, d); default: the embedded classifier's
            shared encoder (``guardrail.classifiers.embedded``), loaded on first use.
    """

    def __init__(self, topics: Sequence[Topic], *, embed: Embed | None = None) -> None:
        self.topics = list(topics)
        self._embed = embed
        self._calibrated: list[_Calibrated] | None = None
        self._lock = threading.Lock()

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        if self._embed is None:
            # Looked up by name at call time, as the registry loads the `embedded` backend: the
            # core does not depend on the backend (nor on torch, which it may use).
            encoder = importlib.import_module("guardrail.classifiers.embedded._encoder")
            self._embed = encoder.get_encoder().embed
        return np.asarray(self._embed(list(texts)), dtype=np.float32)

    def calibrated(self) -> list[_Calibrated]:
        """Each topic's vectors and references (computed once)."""
        if self._calibrated is None:
            with self._lock:
                if self._calibrated is None:
                    self._calibrated = self._calibrate()
        return self._calibrated

    def _calibrate(self) -> list[_Calibrated]:
        background = self._vectors(background_sentences())
        out = []
        for topic in self.topics:
            vectors = self._vectors([topic.description, *topic.examples])
            raw_bg = (background @ vectors.T).max(axis=1)
            median = float(np.median(raw_bg))
            mad = float(np.median(np.abs(raw_bg - median)))
            out.append(_Calibrated(topic, vectors, median, max(1.4826 * mad, _MIN_SCALE)))
        return out

    def warm_up(self) -> None:
        """Load the encoder and calibrate now."""
        self.calibrated()

    def score(self, texts: Sequence[str]) -> list[list[TopicScore]]:
        """Per text, its score against every topic (in the order of ``topics``)."""
        calibrated = self.calibrated()
        if not texts:
            return []
        vectors = self._vectors(texts)
        out: list[list[TopicScore]] = []
        for row in vectors:
            scores = []
            for cal in calibrated:
                raw = float((cal.vectors @ row).max())
                scores.append(
                    TopicScore(
                        cal.topic.name,
                        round(raw, 4),
                        round(cal.z(raw), 3),
                        round(cal.score(raw), 4),
                    )
                )
            out.append(scores)
        return out
