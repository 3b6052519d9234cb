"""Which input columns mean what, and turning one input record into something to score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from guardrail.errors import ConfigError
from guardrail.types import Role

from .readers import Record

__all__ = ["FieldSpec", "Prepared", "parse_label_map", "prepare"]

SAFE = "safe"
UNSAFE = "unsafe"
_TRUE = {"true", "1", "yes", "unsafe", "y", "t"}
_FALSE = {"false", "0", "no", "safe", "n", "f"}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How to read the input's columns.

    Attributes:
        text_field: the column with the text to check.
        prompt_field: for responses, the column with the prompt they answer.
        id_field: the id column (row numbers when None).
        role: the role of every row, unless ``role_field`` is set.
        role_field: a column holding ``prompt`` or ``response`` per row.
        label_field: a column with the ground truth.
        label_map: label value -> ``safe``, ``unsafe`` or a category id (booleans and
            ``0``/``1``/``true``/``false`` work without one).
        language_field: a column with known language codes (detected when None or empty).
    """

    text_field: str = "text"
    prompt_field: str | None = None
    id_field: str | None = None
    role: Role = Role.PROMPT
    role_field: str | None = None
    label_field: str | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    language_field: str | None = None

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the output (for resume checks)."""
        return {
            "text_field": self.text_field,
            "prompt_field": self.prompt_field,
            "id_field": self.id_field,
            "role": self.role.value,
            "role_field": self.role_field,
            "label_field": self.label_field,
            "label_map": dict(sorted(self.label_map.items())),
            "language_field": self.language_field,
        }


@dataclass(frozen=True, slots=True)
class Prepared:
    """One row ready to score, or the reason it cannot be."""

    row: int
    id: str
    role: Role
    text: str | None
    prompt: str | None = None
    language: str | None = None
    label: bool | None = None
    label_category: str | None = None
    error: str | None = None


def parse_label_map(items: list[str]) -> dict[str, str]:
    """Parse ``VALUE=safe|unsafe|CATEGORY`` items.

    Raises:
        ConfigError: an item without ``=``.
    """
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ConfigError(f"--label-map expects VALUE=safe|unsafe|CATEGORY, got {part!r}")
            out[key.strip()] = value.strip()
    return out


def prepare(record: Record, spec: FieldSpec) -> Prepared:
    """Turn an input record into a ``Prepared`` row (never raises for bad data)."""
    values = record.fields
    rid = _id(record, spec)
    role = spec.role
    if record.error is not None:
        return Prepared(record.row, rid, role, None, error=record.error)
    if spec.role_field is not None:
        raw_role = values.get(spec.role_field)
        try:
            role = Role(str(raw_role).strip().lower())
        except ValueError:
            return Prepared(record.row, rid, role, None, error=f"bad role {raw_role!r}")
    try:
        label, category = _label(values, spec)
    except ValueError as e:
        return Prepared(record.row, rid, role, None, error=str(e))
    text, problem = _text(values, spec.text_field)
    prompt = None
    if problem is None and spec.prompt_field is not None and role is Role.RESPONSE:
        raw = values.get(spec.prompt_field)
        prompt = raw if isinstance(raw, str) and raw.strip() else None
    language = values.get(spec.language_field) if spec.language_field else None
    return Prepared(
        record.row,
        rid,
        role,
        text,
        prompt,
        language if isinstance(language, str) and language.strip() else None,
        label,
        category,
        problem,
    )


def _id(record: Record, spec: FieldSpec) -> str:
    if spec.id_field is None:
        return str(record.row)
    value = record.fields.get(spec.id_field)
    if value is None:
        return str(record.row)
    # An id must survive UTF-8 output: lone surrogates are written as escapes.
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _text(values: dict[str, Any], name: str) -> tuple[str | None, str | None]:
    if name not in values:
        return None, f"no {name!r} field"
    value = values[name]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, f"{name!r} is null"
    if not isinstance(value, str):
        return None, f"{name!r} is {type(value).__name__}, not a string"
    if not value.strip():
        return None, "empty text"
    return value, None


def _label(values: dict[str, Any], spec: FieldSpec) -> tuple[bool | None, str | None]:
    if spec.label_field is None:
        return None, None
    raw = values.get(spec.label_field)
    if raw is None or raw == "":
        return None, None
    key = str(raw).strip()
    if isinstance(raw, bool):
        key = "true" if raw else "false"
    mapped = spec.label_map.get(key)
    if mapped is None and spec.label_map and isinstance(raw, bool):
        mapped = spec.label_map.get(str(raw))
    if mapped is not None:
        if mapped == SAFE:
            return False, None
        if mapped == UNSAFE:
            return True, None
        return True, mapped
    low = key.lower()
    if low in _TRUE:
        return True, None
    if low in _FALSE:
        return False, None
    raise ValueError(f"label {raw!r} is not a boolean and not in --label-map")


def check_label_map(label_map: dict[str, str], categories: set[str]) -> None:
    """Fail early when a label maps to something that is not safe, unsafe or a category.

    Raises:
        ConfigError: an unknown target.
    """
    for key, target in label_map.items():
        if target not in (SAFE, UNSAFE) and target not in categories:
            raise ConfigError(
                f"--label-map {key}={target}: {target!r} is not safe, unsafe or a category id "
                f"of the policy's taxonomy ({', '.join(sorted(categories))})"
            )


def check_columns(records: list[Record], spec: FieldSpec) -> None:
    """Fail fast when a named column is in none of the first rows (a typo, not bad data).

    Raises:
        ConfigError: a column named by an option is missing from every readable row.
    """
    readable = [r.fields for r in records if r.error is None]
    if not readable:
        return
    seen = sorted({k for fields in readable for k in fields})
    named = {
        "--text-field": spec.text_field,
        "--prompt-field": spec.prompt_field,
        "--id-field": spec.id_field,
        "--role-field": spec.role_field,
        "--label-field": spec.label_field,
        "--language-field": spec.language_field,
    }
    for option, name in named.items():
        if name is not None and not any(name in fields for fields in readable):
            raise ConfigError(
                f"{option} {name!r}: no such column in the first {len(readable)} rows; "
                f"columns: {', '.join(seen)}"
            )
