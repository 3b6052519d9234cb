"""Finding and reading the built-in YAML files shipped in ``guardrail.policies``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from guardrail.errors import ConfigError

_SUFFIXES = (".yaml", ".yml")
_KIND_DIRS = {"policies": "", "taxonomies": "taxonomies", "mappings": "mappings"}


def _builtin_dir(kind: str) -> Path:
    root = Path(str(resources.files("guardrail.policies")))
    sub = _KIND_DIRS[kind]
    return root / sub if sub else root


def resource_names(kind: str) -> list[str]:
    """Names of the built-in files of one kind (policies, taxonomies, mappings)."""
    folder = _builtin_dir(kind)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in _SUFFIXES)


def looks_like_path(name_or_path: str | Path) -> bool:
    """True when the argument is a file path rather than a built-in name."""
    if isinstance(name_or_path, Path):
        return True
    return name_or_path.endswith(_SUFFIXES) or "/" in name_or_path or "\\" in name_or_path


def resource_path(kind: str, name_or_path: str | Path) -> Path:
    """Resolve a built-in name or a file path to an existing file.

    Raises:
        ConfigError: the file does not exist or the name is not built in (lists known names).
    """
    if looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a {_singular(kind)} file")
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        return path
    name = str(name_or_path)
    path = _builtin_dir(kind) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(resource_names(kind)) or "(none)"
        raise ConfigError(f"unknown built-in {_singular(kind)} {name!r}; known: {known}")
    return path


def _singular(kind: str) -> str:
    return kind.rstrip("s").replace("taxonomie", "taxonomy").replace("policie", "policy")


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping.

    Raises:
        ConfigError: unreadable file, YAML syntax error (with line) or not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def format_validation_error(error: ValidationError) -> str:
    """One line per pydantic error: ``  field.path: message``."""
    lines = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)
