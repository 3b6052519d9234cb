"""Greedy generation with transformers that keeps the answer tokens' probabilities.

At every generated step a logits processor records the log-probabilities of the family's
candidate answer tokens (e.g. ``safe`` / ``unsafe``, with and without a leading space), so a
decision's score is the model's own distribution at the position where it wrote the answer,
not only the text it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from guardrail.classifiers.hub._families import Call, Decision
from guardrail.classifiers.hub._loading import LoadedModel, input_device
from guardrail.classifiers.hub._select import Generation
from guardrail.errors import ClassifierError


def render(tokenizer: Any, call: Call) -> str:
    """The prompt string for a call (chat messages go through the tokenizer's template).

    Raises:
        ClassifierError: the call needs a chat template and the tokenizer has none.
    """
    if call.text is not None:
        return call.text
    if not getattr(tokenizer, "chat_template", None):
        raise ClassifierError("this family needs the model's chat template; the tokenizer has none")
    messages = [{"role": role, "content": content} for role, content in call.messages or ()]
    text: str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text


def candidate_tokens(tokenizer: Any, decisions: Iterable[Decision]) -> dict[int, str]:
    """Token id -> token text for the first token of every answer word's spellings."""
    words: set[str] = set()
    for decision in decisions:
        words.update(decision.positive + decision.negative + decision.middle)
    out: dict[int, str] = {}
    for word in sorted(words):
        for spelling in {word, word.capitalize(), word.upper()}:
            for variant in (spelling, " " + spelling):
                ids = tokenizer.encode(variant, add_special_tokens=False)
                if ids:
                    out[int(ids[0])] = tokenizer.decode([ids[0]])
    return out


def _eos_ids(loaded: LoadedModel) -> set[int]:
    eos: set[int] = set()
    for value in (loaded.model.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        if isinstance(value, int):
            eos.add(value)
        elif isinstance(value, list):
            eos.update(int(v) for v in value)
    return eos


class _Recorder:
    """A logits processor that keeps the candidates' log-probabilities at every step."""

    def __init__(self, candidate_ids: list[int]) -> None:
        import torch

        self.ids = torch.tensor(candidate_ids, dtype=torch.long)
        self.steps: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logp = torch.log_softmax(scores.float(), dim=-1)
        self.steps.append(logp[:, self.ids.to(scores.device)].cpu())
        return scores


def generate(
    loaded: LoadedModel,
    prompts: Sequence[tuple[str, bool]],
    *,
    max_new_tokens: int,
    candidates: dict[int, str],
) -> list[Generation]:
    """Greedy answers for a batch of prompts.

    Args:
        loaded: the model and tokenizer.
        prompts: (prompt text, whether the tokenizer adds its special tokens).
        max_new_tokens: longest answer.
        candidates: token id -> text of the answer tokens to record.
    """
    import torch
    import transformers

    tok = loaded.tokenizer
    eos = _eos_ids(loaded)
    pad = tok.pad_token_id if tok.pad_token_id is not None else min(eos, default=0)
    encoded = [tok.encode(text, add_special_tokens=special) for text, special in prompts]
    width = max(len(ids) for ids in encoded)
    # Decoder-only models are padded on the left so every answer starts at the same column.
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
    cand_ids = list(candidates)
    recorder = _Recorder(cand_ids)
    config_class: Any = transformers.GenerationConfig
    config = config_class(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=sorted(eos) or None,
        pad_token_id=pad,
    )
    device = input_device(loaded)
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            generation_config=config,
            logits_processor=transformers.LogitsProcessorList([recorder]),
        )
    answers = out[:, width:].tolist()
    return [
        _generation(tok, row, answer, eos, recorder.steps, cand_ids, candidates)
        for row, answer in enumerate(answers)
    ]


def _generation(
    tok: Any,
    row: int,
    answer: list[int],
    eos: set[int],
    steps: list[Any],
    cand_ids: list[int],
    candidates: dict[int, str],
) -> Generation:
    cut = next((i for i, t in enumerate(answer) if t in eos), len(answer))
    ids = answer[:cut]
    text = tok.decode(ids, skip_special_tokens=True)
    ends = [len(tok.decode(ids[: i + 1], skip_special_tokens=True)) for i in range(len(ids))]

    def alternatives(step: int) -> dict[str, float]:
        logp = steps[step][row].exp().tolist()
        out: dict[str, float] = {}
        for tid, prob in zip(cand_ids, logp, strict=True):
            key = candidates[tid]
            out[key] = out.get(key, 0.0) + prob
        return out

    return Generation(text=text, ends=ends, alternatives=alternatives)
