"""Loading transformers models for the HF backends, once per process.

Models are cached by everything that changes the loaded weights (path or hub id, revision, task,
device, dtype, quantization, device map, remote code), so two ``Guard`` objects that name the
same model and options share one copy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guardrail.errors import ConfigError, install_hint

INSTALL_HINT = install_hint("hf")

Task = Literal["sequence", "causal"]


class HFLoadOptions(BaseModel):
    """Options shared by the transformers backends (``hf-sequence``, ``hf-generative``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str = Field(description="Local folder or hub id, e.g. `repelloai/CREST-Base`.")
    revision: str | None = Field(
        None, description="Pinned hub revision (commit hash); recommended for hub ids."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        "auto", description="Where to run: cpu, cuda, or auto (cuda when available)."
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Weight dtype; auto: float16 on CUDA, float32 on CPU."
    )
    quantization: Literal["none", "int8", "nf4"] = Field(
        "none", description="bitsandbytes quantization through transformers' quantization_config."
    )
    device_map: str | dict[str, str | int] | None = Field(
        None, description="accelerate device map (e.g. `auto`, `cpu`); overrides `device`."
    )
    max_length: int = Field(512, gt=8, description="Longest input, in tokens.")
    batch_size: int = Field(8, gt=0, description="Texts per forward pass.")
    trust_remote_code: bool = Field(
        False, description="Run code shipped with the model (only for models you trust)."
    )
    local_files_only: bool = Field(
        False, description="Never contact the hub; load from the local cache or path only."
    )


@dataclass(frozen=True)
class LoadedModel:
    """A model, its tokenizer and the device its inputs go to."""

    model: Any
    tokenizer: Any
    device: str
    key: tuple[Any, ...]


_cache: dict[tuple[Any, ...], LoadedModel] = {}
_lock = threading.Lock()


def require_torch() -> Any:
    """Import torch and transformers, or explain how to install them.

    Raises:
        ConfigError: an optional dependency of the HF backends is missing.
    """
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f"the HF backends need torch and transformers ({e.name} is missing): {INSTALL_HINT}"
        ) from e
    return torch


def resolve_device(options: HFLoadOptions) -> str:
    """The device inputs are moved to: ``cpu`` or ``cuda``.

    Raises:
        ConfigError: ``cuda`` was asked for and is not available.
    """
    torch = require_torch()
    has_cuda = bool(torch.cuda.is_available())
    if options.device == "cuda" and not has_cuda:
        raise ConfigError("device: cuda was requested but torch sees no CUDA device")
    if options.device == "auto":
        return "cuda" if has_cuda else "cpu"
    return options.device


def _dtype(options: HFLoadOptions, device: str) -> Any:
    torch = require_torch()
    name = options.dtype
    if name == "auto":
        name = "float16" if device == "cuda" else "float32"
    return getattr(torch, name)


def quantization_config(
    options: HFLoadOptions, compute_dtype: Any, *, skip: list[str] | None = None
) -> Any:
    """A ``BitsAndBytesConfig`` for int8 / nf4, or None.

    ``skip`` names modules kept in full precision (classification heads: tiny, and
    bitsandbytes' CPU 4-bit kernels reject layers with only a few output rows).

    Raises:
        ConfigError: bitsandbytes is not installed.
    """
    if options.quantization == "none":
        return None
    try:
        import bitsandbytes  # noqa: F401
        import transformers
    except ImportError as e:
        raise ConfigError(
            f"quantization: {options.quantization} needs bitsandbytes>=0.48: {INSTALL_HINT}"
        ) from e
    config_class: Any = transformers.BitsAndBytesConfig
    extra: dict[str, Any] = {"llm_int8_skip_modules": skip} if skip else {}
    if options.quantization == "int8":
        return config_class(load_in_8bit=True, **extra)
    return config_class(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        **extra,
    )


def _cache_key(task: Task, options: HFLoadOptions, device: str) -> tuple[Any, ...]:
    device_map: Any = options.device_map
    if isinstance(device_map, dict):
        device_map = tuple(sorted(device_map.items()))
    return (
        task,
        options.model,
        options.revision,
        device,
        options.dtype,
        options.quantization,
        device_map,
        options.trust_remote_code,
    )


def load(task: Task, options: HFLoadOptions) -> LoadedModel:
    """Load (or reuse) a model and tokenizer for ``task``.

    Args:
        task: ``sequence`` (AutoModelForSequenceClassification) or ``causal``
            (AutoModelForCausalLM).
        options: where the model is and how to load it.

    Returns:
        The shared ``LoadedModel`` for these options.

    Raises:
        ConfigError: a dependency is missing, or the model cannot be found or loaded.
    """
    device = resolve_device(options)
    key = _cache_key(task, options, device)
    with _lock:
        loaded = _cache.get(key)
        if loaded is None:
            loaded = _load_uncached(task, options, device, key)
            _cache[key] = loaded
        return loaded


def clear_cache() -> None:
    """Forget every loaded model (the next ``load`` reads the weights again)."""
    with _lock:
        _cache.clear()


def _load_uncached(
    task: Task, options: HFLoadOptions, device: str, key: tuple[Any, ...]
) -> LoadedModel:
    require_torch()
    import transformers

    auto: Any = (
        transformers.AutoModelForSequenceClassification
        if task == "sequence"
        else transformers.AutoModelForCausalLM
    )
    dtype = _dtype(options, device)
    common: dict[str, Any] = {
        "revision": options.revision,
        "trust_remote_code": options.trust_remote_code,
        "local_files_only": options.local_files_only,
    }
    kwargs: dict[str, Any] = {**common, "dtype": dtype}
    # Heads of sequence classifiers (`classifier`, `score`) stay unquantized; causal LMs keep
    # transformers' default (the output layer is never quantized).
    skip = ["classifier", "score", "pre_classifier"] if task == "sequence" else None
    quant = quantization_config(options, dtype, skip=skip)
    if quant is not None:
        kwargs["quantization_config"] = quant
    device_map = options.device_map
    if device_map is None and quant is not None:
        # bitsandbytes places the quantized weights itself; it needs a device map.
        device_map = {"": device}
    if device_map is not None:
        _require_accelerate()
        kwargs["device_map"] = device_map
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(options.model, **common)
        model = auto.from_pretrained(options.model, **kwargs)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load model {options.model!r} ({task}): {e}") from e
    if device_map is None:
        model = model.to(device)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, key=key)


def _require_accelerate() -> None:
    try:
        import accelerate  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"device_map needs accelerate: {INSTALL_HINT}") from e


def input_device(loaded: LoadedModel) -> Any:
    """Where the model's inputs must go (the first parameter's device under a device map)."""
    try:
        return next(loaded.model.parameters()).device
    except StopIteration:
        return loaded.device
