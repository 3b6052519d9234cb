"""``hf-sequence``: transformers sequence-classification models (CREST and other encoders).

Binary, multi-class (softmax) and multi-label (sigmoid) heads. Each of the model's labels
(``config.id2label``) is mapped by the ``label_map`` option to ``safe``, ``unsafe`` or categories of
the policy's taxonomy. Long texts are split into windows of ``max_length`` tokens (overlapping by
``stride``) and the highest score over the windows is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from guardrail.classifiers.hub._loading import HFLoadOptions, input_device, load
from guardrail.errors import ClassifierError, ConfigError
from guardrail.registry import register_classifier
from guardrail.taxonomy import Taxonomy
from guardrail.types import Role, Sample, ScoreSet

__all__ = ["HFSequenceClassifier"]

# Label names read without a label_map; anything else (LABEL_0, ...) must be mapped explicitly.
_SAFE_NAMES = {"safe", "benign", "unharmful", "non-toxic", "not_toxic"}
_UNSAFE_NAMES = {"unsafe", "harmful", "toxic"}


@register_classifier("hf-sequence")
class HFSequenceClassifier:
    """An encoder classifier loaded with transformers.

    Args:
        options: model location, loading options, label mapping.
        taxonomy: the policy's taxonomy (category labels must name its ids).

    Raises:
        ConfigError: missing dependency, model not found, or a label the map does not cover.
    """

    name = "hf-sequence"

    class Options(HFLoadOptions):
        """Options of the ``hf-sequence`` classifier."""

        label_map: dict[str, str | list[str]] | None = Field(
            None,
            description="Model label -> `safe`, `unsafe` or policy category id(s). Default: "
            "labels named safe/unsafe (or benign/harmful, non-toxic/toxic).",
        )
        head: Literal["auto", "softmax", "sigmoid"] = Field(
            "auto",
            description="softmax (binary / multi-class) or sigmoid (multi-label); auto reads "
            "the model's problem_type.",
        )
        stride: int = Field(32, ge=0, description="Tokens shared by consecutive windows.")
        pair_context: bool = Field(
            False, description="Score a response as the pair (prompt, response)."
        )

    def __init__(self, options: Options, *, taxonomy: Taxonomy) -> None:
        self.options = options
        if options.stride >= options.max_length // 2:  # before loading a model for nothing
            raise ConfigError("stride must be less than half of max_length")
        self._loaded = load("sequence", options)
        config = self._loaded.model.config
        labels = [config.id2label[i] for i in range(len(config.id2label))]
        self._targets = _label_targets(labels, options.label_map, taxonomy)
        # Fixed per model: which label columns count as harmful, which feed which category.
        self._harmful = [j for j, t in enumerate(self._targets) if t != ["safe"]]
        self._category_columns = [
            (j, cat)
            for j, t in enumerate(self._targets)
            for cat in t
            if cat not in ("safe", "unsafe")
        ]
        head = options.head
        if head == "auto":
            multi = getattr(config, "problem_type", None) == "multi_label_classification"
            head = "sigmoid" if multi else "softmax"
        self._head = head
        self.version = options.model + (f"@{options.revision}" if options.revision else "")
        #: The categories the model's labels feed.
        self.scored_categories = frozenset(
            name for t in self._targets for name in t if name not in ("safe", "unsafe")
        )

    @classmethod
    def scored_categories_for(cls, options: Options, taxonomy: Taxonomy) -> frozenset[str] | None:
        """The categories ``label_map`` can feed (every entry, before the model says which of
        its labels exist); none without a label_map (labels are read as safe / unsafe)."""
        out: set[str] = set()
        for value in (options.label_map or {}).values():
            names = [value] if isinstance(value, str) else value
            out.update(n for n in names if n not in ("safe", "unsafe"))
        return frozenset(out)

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score a batch; long texts are scored window by window (maximum kept)."""
        if not samples:
            return []
        probs = self._window_probs(samples)
        return [self._scoreset(sample, rows) for sample, rows in zip(samples, probs, strict=True)]

    def _encode(self, samples: Sequence[Sample]) -> Any:
        tok = self._loaded.tokenizer
        texts = [s.text for s in samples]
        kwargs: dict[str, Any] = {
            "truncation": True,
            "max_length": self.options.max_length,
            "stride": self.options.stride,
            "return_overflowing_tokens": True,
        }
        if self.options.pair_context and any(s.role is Role.RESPONSE for s in samples):
            contexts = [s.context or "" if s.role is Role.RESPONSE else "" for s in samples]
            return tok(contexts, texts, **{**kwargs, "truncation": "only_second"})
        return tok(texts, **kwargs)

    def _window_probs(self, samples: Sequence[Sample]) -> list[list[list[float]]]:
        import torch

        enc = self._encode(samples)
        owners = list(enc["overflow_to_sample_mapping"])
        keys = ["input_ids", "attention_mask"]
        if "token_type_ids" in enc and self._loaded.model.config.type_vocab_size > 1:
            keys.append("token_type_ids")
        tok, device = self._loaded.tokenizer, input_device(self._loaded)
        out: list[list[list[float]]] = [[] for _ in samples]
        size = self.options.batch_size
        with torch.inference_mode():
            for start in range(0, len(owners), size):
                # Pad each batch to its own longest window, not to the longest of the call.
                rows = {k: enc[k][start : start + size] for k in keys}
                batch = tok.pad(rows, return_tensors="pt")
                logits = self._loaded.model(**{k: batch[k].to(device) for k in keys}).logits
                logits = logits.float()
                probs = logits.sigmoid() if self._head == "sigmoid" else logits.softmax(-1)
                if probs.shape[-1] != len(self._targets):  # the label columns assume this
                    raise ClassifierError(
                        f"{self.options.model} returned {probs.shape[-1]} labels, its config "
                        f"lists {len(self._targets)}"
                    )
                for owner, row in zip(owners[start : start + size], probs.tolist(), strict=True):
                    out[owner].append(row)
        return out

    def _scoreset(self, sample: Sample, windows: list[list[float]]) -> ScoreSet:
        unsafe = 0.0
        categories: dict[str, float] = {}
        for row in windows:
            unsafe = max(unsafe, self._unsafe(row))
            for j, cat in self._category_columns:
                categories[cat] = max(categories.get(cat, 0.0), row[j])
        notes = (f"scored in {len(windows)} windows (max taken)",) if len(windows) > 1 else ()
        return ScoreSet(
            unsafe=min(unsafe, 1.0),
            categories=categories,
            language=sample.language,
            classifier=self.name,
            version=self.version,
            notes=notes,
        )

    def _unsafe(self, row: list[float]) -> float:
        harmful = [row[j] for j in self._harmful]
        if self._head == "sigmoid":
            return max(harmful, default=0.0)
        return sum(harmful)


def _label_targets(
    labels: list[str], label_map: dict[str, str | list[str]] | None, taxonomy: Taxonomy
) -> list[list[str]]:
    """For each model label: ``["safe"]``, ``["unsafe"]`` or category ids."""
    targets: list[list[str]] = []
    for label in labels:
        if label_map is None:
            low = label.lower()
            if low in _SAFE_NAMES:
                targets.append(["safe"])
            elif low in _UNSAFE_NAMES:
                targets.append(["unsafe"])
            else:
                raise ConfigError(
                    f"hf-sequence: model label {label!r} needs a `label_map` entry "
                    f"(model labels: {', '.join(labels)})"
                )
            continue
        if label not in label_map:
            raise ConfigError(
                f"hf-sequence: label_map has no entry for model label {label!r} "
                f"(model labels: {', '.join(labels)})"
            )
        value = label_map[label]
        names = [value] if isinstance(value, str) else list(value)
        for name in names:
            if name not in ("safe", "unsafe"):
                taxonomy.get(name)
        targets.append(names)
    if all(t == ["safe"] for t in targets):
        raise ConfigError("hf-sequence: every label maps to 'safe'; nothing could score unsafe")
    return targets
