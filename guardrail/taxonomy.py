"""Harm taxonomies and total mappings between them.

A taxonomy is a list of categories with a stable snake_case id, a short code (e.g. ``S1``) and a
description. A mapping translates one taxonomy's categories to another's and is total by
declaration: every source category is either mapped or listed under ``unmapped``, and every
target category is either reached or listed under ``target_unmapped``. Anything else fails at
load time, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardrail._resources import (
    format_validation_error,
    read_yaml,
    resource_names,
    resource_path,
)
from guardrail.errors import ConfigError
from guardrail.types import Role

__all__ = [
    "Category",
    "Taxonomy",
    "TaxonomyMapping",
    "list_mappings",
    "list_taxonomies",
    "load_mapping",
    "load_taxonomy",
]

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class Category(BaseModel):
    """One harm category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Stable snake_case identifier.")
    code: str = Field(description="Short code, e.g. S1, or the external name.")
    name: str = Field(description="Display name.")
    description: str = Field("", description="What the category covers.")
    roles: tuple[Role, ...] = Field(
        (Role.PROMPT, Role.RESPONSE), description="Directions the category applies to."
    )

    @field_validator("id")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"category id {value!r} must be snake_case ([a-z][a-z0-9_]*)")
        return value


class Taxonomy(BaseModel):
    """An ordered set of categories."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Taxonomy name.")
    description: str = Field("", description="Where the taxonomy comes from.")
    categories: tuple[Category, ...] = Field(description="The categories, in display order.")

    @field_validator("categories")
    @classmethod
    def _unique(cls, value: tuple[Category, ...]) -> tuple[Category, ...]:
        seen: set[str] = set()
        for field in ("id", "code"):
            seen.clear()
            for cat in value:
                key = getattr(cat, field)
                if key in seen:
                    raise ValueError(f"duplicate category {field} {key!r}")
                seen.add(key)
        return value

    @property
    def ids(self) -> list[str]:
        """Category ids in order."""
        return [c.id for c in self.categories]

    def get(self, category_id: str) -> Category:
        """The category with this id.

        Raises:
            ConfigError: no such category (the message lists the known ids).
        """
        for cat in self.categories:
            if cat.id == category_id:
                return cat
        raise ConfigError(
            f"unknown category {category_id!r} in taxonomy {self.name!r}; "
            f"known: {', '.join(self.ids)}"
        )

    def by_code(self, code: str) -> Category:
        """The category with this code (case-insensitive), e.g. ``S10``."""
        for cat in self.categories:
            if cat.code.lower() == code.strip().lower():
                return cat
        raise ConfigError(f"unknown category code {code!r} in taxonomy {self.name!r}")

    def for_role(self, role: Role) -> list[Category]:
        """The categories that apply to prompts or to responses."""
        return [c for c in self.categories if role in c.roles]

    def extended(
        self, *, add: Iterable[Category] = (), remove: Iterable[str] = (), name: str | None = None
    ) -> Taxonomy:
        """A new taxonomy with categories added and/or removed."""
        removed = set(remove)
        for rid in removed:
            self.get(rid)
        kept = [c for c in self.categories if c.id not in removed]
        return Taxonomy(
            name=name or self.name, description=self.description, categories=(*kept, *add)
        )


class TaxonomyMapping(BaseModel):
    """A total mapping from one taxonomy's categories to another's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="Source taxonomy name.")
    target: str = Field(description="Target taxonomy name.")
    description: str = Field("", description="Notes on the mapping.")
    map: dict[str, list[str]] = Field(
        default_factory=dict, description="Source category id -> target category ids."
    )
    unmapped: list[str] = Field(
        default_factory=list, description="Source categories with no target counterpart."
    )
    target_unmapped: list[str] = Field(
        default_factory=list, description="Target categories that no source category reaches."
    )

    def check(self, source: Taxonomy, target: Taxonomy) -> None:
        """Check that the mapping is total and names only real categories.

        Raises:
            ConfigError: a category is neither mapped nor unmapped, or a name does not exist.
        """
        where = f"mapping {self.source} -> {self.target}"
        src_ids, tgt_ids = set(source.ids), set(target.ids)
        named = set(self.map) | set(self.unmapped)
        problems = [f"unknown source category {s!r}" for s in sorted(named - src_ids)]
        problems += [
            f"source category {s!r} is both mapped and unmapped"
            for s in sorted(set(self.map) & set(self.unmapped))
        ]
        problems += [
            f"source category {s!r} is neither mapped nor listed as unmapped"
            for s in source.ids
            if s not in named
        ]
        reached = {t for targets in self.map.values() for t in targets}
        for t in sorted((reached | set(self.target_unmapped)) - tgt_ids):
            problems.append(f"unknown target category {t!r}")
        problems += [
            f"target category {t!r} is neither reached nor listed as target_unmapped"
            for t in target.ids
            if t not in reached and t not in self.target_unmapped
        ]
        if problems:
            raise ConfigError(f"{where}: " + "; ".join(problems))

    def forward(self, scores: Mapping[str, float]) -> dict[str, float]:
        """Translate source-category scores to target categories (max over sources)."""
        out: dict[str, float] = {}
        for src, targets in self.map.items():
            value = scores.get(src)
            if value is None:
                continue
            for tgt in targets:
                out[tgt] = max(out.get(tgt, 0.0), value)
        return out

    def backward(self, scores: Mapping[str, float]) -> dict[str, float]:
        """Translate target-category scores back to source categories (max over targets)."""
        out: dict[str, float] = {}
        for src, targets in self.map.items():
            values = [scores[t] for t in targets if t in scores]
            if values:
                out[src] = max(values)
        return out

    def extended(
        self, *, map: Mapping[str, list[str]] | None = None, unmapped: Iterable[str] = ()
    ) -> TaxonomyMapping:
        """A copy that also maps categories a custom taxonomy added."""
        return self.model_copy(
            update={"map": {**self.map, **(map or {})}, "unmapped": [*self.unmapped, *unmapped]}
        )


def list_taxonomies() -> list[str]:
    """Names of the built-in taxonomies."""
    return resource_names("taxonomies")


def list_mappings() -> list[tuple[str, str]]:
    """(source, target) pairs of the built-in mappings."""
    pairs = []
    for name in resource_names("mappings"):
        source, _, target = name.partition("_to_")
        pairs.append((source, target))
    return pairs


def load_taxonomy(name_or_path: str | Path) -> Taxonomy:
    """Load a built-in taxonomy by name, or a taxonomy YAML file by path.

    Raises:
        ConfigError: the file is missing or invalid (the message names the file and field).
    """
    path = resource_path("taxonomies", name_or_path)
    return _load_taxonomy_file(str(path))


@cache
def _load_taxonomy_file(path: str) -> Taxonomy:
    data = read_yaml(Path(path))
    try:
        return Taxonomy.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: invalid taxonomy:\n{format_validation_error(e)}") from e


def load_mapping(
    source: str, target: str, *, source_taxonomy: Taxonomy | None = None
) -> TaxonomyMapping:
    """Load the built-in mapping from ``source`` to ``target`` and check it is total.

    Args:
        source: source taxonomy name (e.g. ``mlcommons``).
        target: target taxonomy name (e.g. ``openai``).
        source_taxonomy: check against this (possibly customised) taxonomy instead of the
            built-in one of that name.

    Raises:
        ConfigError: no such mapping, or it is not total.
    """
    path = resource_path("mappings", f"{source}_to_{target}")
    try:
        mapping = TaxonomyMapping.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ConfigError(f"{path}: invalid mapping:\n{format_validation_error(e)}") from e
    mapping.check(source_taxonomy or load_taxonomy(source), load_taxonomy(target))
    return mapping
