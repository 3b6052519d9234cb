"""The classifier interface: one batched, synchronous verb over samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from guardrail.taxonomy import Taxonomy
from guardrail.types import Sample, ScoreSet

__all__ = ["Classifier", "ClassifierFactory", "NoOptions"]


@runtime_checkable
class Classifier(Protocol):
    """Anything that scores samples.

    ``score`` takes a batch and returns one ``ScoreSet`` per sample, in order. It is synchronous;
    async callers run it in a thread pool at the edge. Backends need not inherit from anything.

    Optionally a classifier has ``scored_categories`` (a frozenset of the category ids it scores,
    or None when unknown), and its factory a ``scored_categories_for(options, taxonomy)``
    classmethod giving the same without building it: the guard and ``load_policy`` refuse a
    policy with thresholds for categories outside it.
    """

    name: str

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score a batch of samples."""
        ...


class NoOptions(BaseModel):
    """Options model for a backend that takes none."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ClassifierFactory(Protocol):
    """What the registry stores: a class (or callable) with an ``Options`` model.

    It is called as ``factory(options, taxonomy=taxonomy)`` with validated options.
    """

    Options: ClassVar[type[BaseModel]]

    def __call__(self, options: Any, *, taxonomy: Taxonomy) -> Classifier:
        """Build a classifier."""
        ...
