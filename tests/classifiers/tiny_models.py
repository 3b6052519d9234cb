"""Tiny randomly initialised models and locally built tokenizers for the HF backend tests.

Nothing here downloads. (Qwen2 is left out: transformers 5 rebuilds a ``qwen2`` model's tokenizer as byte-level BPE
whatever ``tokenizer.json`` holds, so a WordLevel test tokenizer cannot be used with it; the
Qwen family is covered by Qwen3.) Tokenizers are WordLevel vocabularies (``tokenizers``) whose answer
pieces (``unsafe``, ``Harmful request:``, `` yes`` ...) are added tokens, so a whole answer is a
short chain of distinct tokens. ``program`` turns a decoder into a bigram model whose next-token
logits depend only on the current token: every transformer layer is zeroed (the residual stream
is then the token embedding), embeddings are one-hot and the output layer is written so that
``logits[next | current]`` are the values asked for. That lets a test make a random model write
an exact answer in a family's format, with a chosen probability at the decision token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<eos>", "<unk>", "<s>", "</s>", "<mask>"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = [
    "how", "do", "i", "make", "a", "bomb", "bake", "bread", "hello", "world", "sure", "here",
    "is", "the", "recipe", "sorry", "can't", "help", "with", "that", "assistant", "user",
    "system", "correctly.", "kill", "someone", "nice", "day",
]  # fmt: skip


def build_tokenizer(
    added: Sequence[str] = (), *, chat_template: str | None = None, sequence: bool = False
) -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer over ``WORDS`` plus ``added`` tokens (matched verbatim)."""
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *WORDS])}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if not sequence:
        # Answer pieces carry their own spaces and newlines; join them as they are.
        inner.decoder = decoders.Fuse()
    inner.add_special_tokens([AddedToken(t, special=True) for t in SPECIALS])
    inner.add_tokens([AddedToken(t, normalized=False) for t in dict.fromkeys(added)])
    if sequence:
        inner.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", 3), ("</s>", 4)]
        )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=inner,
        pad_token="<pad>",
        eos_token="</s>" if sequence else "<eos>",
        unk_token="<unk>",
        bos_token="<s>",
        cls_token="<s>",
        sep_token="</s>",
        mask_token="<mask>",
    )
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok


def _small(vocab: int) -> dict[str, Any]:
    return {
        "vocab_size": vocab,
        "hidden_size": max(128, vocab + 8),
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 3,
    }


def decoder_config(arch: str, vocab: int) -> Any:
    """A tiny config of one of the decoder architectures guard LLMs use."""
    import transformers as tf

    base = _small(vocab)
    if arch == "llama":
        return tf.LlamaConfig(**base)
    if arch == "mistral":
        return tf.MistralConfig(**base)
    if arch == "qwen3":
        return tf.Qwen3Config(**base)
    if arch == "gemma2":
        return tf.Gemma2Config(**base)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(**base)
    if arch == "llama4":
        return tf.Llama4TextConfig(
            **base,
            intermediate_size_mlp=64,
            num_local_experts=2,
            num_experts_per_tok=1,
            attention_chunk_size=1024,
        )
    raise ValueError(arch)


def program(model: Any, tokenizer: Any, table: Mapping[str, Mapping[str, float]]) -> None:
    """Make ``model`` a bigram model: ``table[current][next]`` is that next token's logit.

    Tokens not named get logit 0 after any token; a current token not in the table predicts
    ``<eos>`` strongly, so every answer ends.
    """
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.model.layers.parameters():
            param.zero_()
        emb = model.get_input_embeddings().weight
        # Only the tokenizer's ids get one-hot embeddings; a larger model vocabulary (a real
        # architecture's size) keeps zero rows that are never predicted.
        vocab = len(tokenizer)
        emb.zero_()
        emb[:vocab, :vocab] = torch.eye(vocab, dtype=emb.dtype)
        ids = torch.arange(vocab).unsqueeze(0)
        final = model.model(input_ids=ids).last_hidden_state[0]  # one-hot per token, scaled
        scale = final[torch.arange(vocab), torch.arange(vocab)]
        head = model.get_output_embeddings().weight
        head.zero_()
        eos = tokenizer.convert_tokens_to_ids("<eos>")
        head[eos, :vocab] = 12.0 / scale
        for cur, nexts in table.items():
            c = _id(tokenizer, cur)
            head[eos, c] = 0.0
            for nxt, logit in nexts.items():
                head[_id(tokenizer, nxt), c] = logit / scale[c]


def _id(tokenizer: Any, token: str) -> int:
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or tid == tokenizer.unk_token_id:
        raise KeyError(f"token {token!r} is not in the tiny vocabulary")
    return int(tid)


def chain(
    tokens: Sequence[str], at: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """A table that writes ``tokens[1:]`` after ``tokens[0]`` (logit 12 each), then ``<eos>``.

    ``at[token]`` replaces the distribution after ``token`` (use it for the decision step).
    """
    table: dict[str, dict[str, float]] = {}
    for cur, nxt in zip(tokens, [*tokens[1:], "<eos>"], strict=True):
        table.setdefault(cur, {})[nxt] = 12.0
    for cur, dist in (at or {}).items():
        table[cur] = dict(dist)
    return table


def save_decoder(
    path: Path,
    arch: str,
    added: Sequence[str],
    table: Mapping[str, Mapping[str, float]],
    *,
    chat_template: str | None = None,
) -> Path:
    """Build, program and save a tiny decoder and its tokenizer under ``path``."""
    import transformers as tf

    tok = build_tokenizer(added, chat_template=chat_template)
    config = decoder_config(arch, len(tok))
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(config)
    program(model, tok, table)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_encoder(
    path: Path,
    id2label: Mapping[int, str],
    *,
    bias: Sequence[float],
    multi_label: bool = False,
    zero_weights: bool = True,
) -> Path:
    """A tiny XLM-R sequence classifier whose output bias is ``bias``.

    With ``zero_weights`` the output layer ignores the text (the score is the bias); without,
    the random weights make scores depend on the text.
    """
    import transformers as tf

    tok = build_tokenizer(sequence=True)
    config = tf.XLMRobertaConfig(
        vocab_size=len(tok),
        # bitsandbytes' CPU 4-bit kernels need dimensions of at least 64.
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=130,
        pad_token_id=0,
        bos_token_id=3,
        eos_token_id=4,
        id2label=dict(id2label),
        label2id={v: k for k, v in id2label.items()},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    torch.manual_seed(0)
    model = tf.XLMRobertaForSequenceClassification(config)
    with torch.no_grad():
        if zero_weights:
            model.classifier.out_proj.weight.zero_()
        else:
            model.classifier.out_proj.weight.mul_(50.0)
        model.classifier.out_proj.bias.copy_(torch.tensor(list(bias)))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_llama4_guard(
    path: Path, added: Sequence[str], table: Mapping[str, Mapping[str, float]]
) -> Path:
    """A checkpoint laid out like Llama Guard 4: a multimodal Llama 4 (text + vision).

    The text model is programmed like ``save_decoder``'s, then placed in a
    ``Llama4ForConditionalGeneration`` (tiny vision tower) that is saved whole, so loading reads
    the text weights out of the multimodal layout as it would for the real checkpoint.
    """
    import transformers as tf

    tok = build_tokenizer(added)
    text_config = decoder_config("llama4", len(tok))
    torch.manual_seed(0)
    text_model = tf.AutoModelForCausalLM.from_config(text_config)
    program(text_model, tok, table)
    vision = {
        "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "image_size": 28, "patch_size": 14, "vision_output_dim": 64,
        "projector_input_dim": 64, "projector_output_dim": text_config.hidden_size,
    }  # fmt: skip
    config = tf.Llama4Config(text_config=text_config.to_dict(), vision_config=vision)
    full = tf.Llama4ForConditionalGeneration(config)
    state = full.state_dict()
    for key, value in text_model.state_dict().items():
        state[f"language_model.{key}"] = value
    full.load_state_dict(state)
    full.save_pretrained(path)
    tok.save_pretrained(path)
    return path
