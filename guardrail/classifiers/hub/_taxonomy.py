"""Translating a model's own categories into the policy's taxonomy through the built-in mappings."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from guardrail.errors import ConfigError
from guardrail.taxonomy import Taxonomy, list_mappings, load_mapping

Translate = Callable[[Mapping[str, float]], dict[str, float]]


def translator(source: str, target: Taxonomy) -> Translate:
    """A function that maps ``source``-taxonomy scores onto ``target``'s category ids.

    Uses the built-in mapping ``source -> target`` (forward), or ``target -> source`` read
    backwards; the identity when both are the same taxonomy.

    Raises:
        ConfigError: no built-in mapping connects the two taxonomies.
    """
    # Mappings are checked against the built-in taxonomies; categories a policy adds are
    # simply not reached by them.
    known = set(target.ids)
    if source == target.name:
        return lambda scores: {k: v for k, v in scores.items() if k in known}
    pairs = set(list_mappings())
    if (source, target.name) in pairs:
        forward = load_mapping(source, target.name)
        return lambda scores: {k: v for k, v in forward.forward(scores).items() if k in known}
    if (target.name, source) in pairs:
        backward = load_mapping(target.name, source)
        return lambda scores: {k: v for k, v in backward.backward(scores).items() if k in known}
    raise ConfigError(
        f"no built-in mapping between the model's taxonomy {source!r} and the policy's "
        f"taxonomy {target.name!r}; add policies/mappings/{source}_to_{target.name}.yaml"
    )
