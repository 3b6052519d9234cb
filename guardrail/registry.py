"""The classifier registry: one table keyed by name, filled two ways.

- In process, with the ``@register_classifier("name")`` decorator (built-ins use it).
- From installed packages, through the entry-point group ``guardrail.classifiers``; an entry
  point names a class (registered under the entry point's name) or a module that registers
  itself. Entry points load lazily, on the first lookup of a name that is not yet known. Set
  ``GUARDRAIL_PLUGINS`` to a comma-separated list of entry-point names to load only those
  (an empty value loads none).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from guardrail._resources import format_validation_error
from guardrail.classifiers.base import Classifier, NoOptions
from guardrail.errors import ConfigError, UnknownClassifierError
from guardrail.taxonomy import Taxonomy

__all__ = [
    "ENTRY_POINT_GROUP",
    "create_classifier",
    "get_classifier_factory",
    "known_classifiers",
    "register_classifier",
    "scored_categories",
    "unregister_classifier",
    "validate_options",
]

ENTRY_POINT_GROUP = "guardrail.classifiers"
PLUGINS_ENV = "GUARDRAIL_PLUGINS"

# Built-ins register themselves with the decorator when their module is imported; the module is
# imported only when its name is first looked up, so optional dependencies stay optional.
_BUILTIN_MODULES = {
    "rules": "guardrail.classifiers.rules",
    "fake": "guardrail.testing",
    "embedded": "guardrail.classifiers.embedded",
    "hf-sequence": "guardrail.classifiers.hub.hf_sequence",
    "hf-generative": "guardrail.classifiers.hub.hf_generative",
    "openai-guard": "guardrail.classifiers.hub.openai_guard",
    "cascade": "guardrail.classifiers.cascade",
}

_registry: dict[str, Any] = {}
_entry_points_loaded = False
_lock = threading.RLock()

F = TypeVar("F", bound=Callable[..., Classifier])


def register_classifier(name: str) -> Callable[[F], F]:
    """Class decorator that registers a classifier backend under ``name``.

    The class must be callable as ``cls(options, taxonomy=...)`` and may define a nested
    pydantic ``Options`` model (otherwise it takes no options).

    Raises:
        ConfigError: the name is already registered, or the class has no ``score`` method.
    """

    def decorator(factory: F) -> F:
        _add(name, factory)
        return factory

    return decorator


def _add(name: str, factory: Any) -> None:
    if not name or not isinstance(name, str):
        raise ConfigError(f"classifier name must be a non-empty string, got {name!r}")
    if not callable(getattr(factory, "score", None)) and isinstance(factory, type):
        raise ConfigError(f"classifier {name!r}: {factory.__name__} has no score() method")
    options = getattr(factory, "Options", NoOptions)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise ConfigError(f"classifier {name!r}: Options must be a pydantic model class")
    with _lock:
        existing = _registry.get(name)
        if existing is not None and existing is not factory:
            raise ConfigError(f"classifier {name!r} is already registered ({existing!r})")
        _registry[name] = factory


def unregister_classifier(name: str) -> None:
    """Remove a registration (for tests and plugin reloads)."""
    with _lock:
        _registry.pop(name, None)


def _plugin_entry_points() -> list[EntryPoint]:
    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    wanted = os.environ.get(PLUGINS_ENV)
    if wanted is not None:
        names = {n.strip() for n in wanted.split(",") if n.strip()}
        eps = [ep for ep in eps if ep.name in names]
    return eps


def _load_entry_point(ep: EntryPoint) -> None:
    try:
        obj = ep.load()
    except ImportError as e:
        raise ConfigError(
            f"classifier plugin {ep.name!r} ({ep.value}) failed to import: {e}"
        ) from e
    # A module entry point registers itself with the decorator on import; a class is added here.
    if isinstance(obj, type) and ep.name not in _registry:
        _add(ep.name, obj)


def _load_plugins() -> None:
    global _entry_points_loaded
    with _lock:
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
        for ep in _plugin_entry_points():
            if ep.name in _registry or ep.name in _BUILTIN_MODULES:
                continue
            _load_entry_point(ep)


def reset_plugins() -> None:
    """Forget which entry points were loaded, so the next lookup scans them again."""
    global _entry_points_loaded
    with _lock:
        _entry_points_loaded = False


def _builtin_available(name: str) -> bool:
    module = _BUILTIN_MODULES.get(name)
    return module is not None and importlib.util.find_spec(module) is not None


def known_classifiers() -> list[str]:
    """Every name a policy may use: built-ins, registered and installed plugins."""
    _load_plugins()
    names = set(_registry) | {n for n in _BUILTIN_MODULES if _builtin_available(n)}
    return sorted(names)


def get_classifier_factory(name: str) -> Any:
    """The registered factory for ``name``.

    Raises:
        UnknownClassifierError: no built-in, registration or plugin has this name.
    """
    with _lock:
        if name in _registry:
            return _registry[name]
        if _builtin_available(name):
            importlib.import_module(_BUILTIN_MODULES[name])
            if name in _registry:
                return _registry[name]
        _load_plugins()
        if name in _registry:
            return _registry[name]
    raise UnknownClassifierError(name, known_classifiers())


def validate_options(spec: Any) -> BaseModel:
    """Validate a ``ClassifierSpec``'s options against its backend's ``Options`` model.

    Raises:
        UnknownClassifierError: unknown classifier name.
        ConfigError: the options do not fit the backend's model (each error with its field).
    """
    factory = get_classifier_factory(spec.name)
    options_model: type[BaseModel] = getattr(factory, "Options", NoOptions)
    try:
        return options_model.model_validate(spec.options)
    except ValidationError as e:
        raise ConfigError(
            f"invalid options for classifier {spec.name!r}:\n{format_validation_error(e)}"
        ) from e


def scored_categories(spec: Any, taxonomy: Taxonomy) -> frozenset[str] | None:
    """The categories the classifier a ``ClassifierSpec`` names would score, without building it.

    A backend tells through an optional ``scored_categories_for(options, taxonomy)`` on its
    factory (cheap: no model is loaded); None when it has none or cannot know (categories that
    come from a model's own labels).

    Raises:
        UnknownClassifierError, ConfigError: as for ``validate_options``.
    """
    options = validate_options(spec)
    hook = getattr(get_classifier_factory(spec.name), "scored_categories_for", None)
    if hook is None:
        return None
    scored: frozenset[str] | None = hook(options, taxonomy)
    return scored


def create_classifier(spec: Any, *, taxonomy: Taxonomy) -> Classifier:
    """Build the classifier a policy names.

    Args:
        spec: a ``ClassifierSpec`` (name and options).
        taxonomy: the policy's taxonomy.

    Raises:
        UnknownClassifierError, ConfigError: as for ``validate_options``.
    """
    options = validate_options(spec)
    factory = get_classifier_factory(spec.name)
    classifier: Classifier = factory(options, taxonomy=taxonomy)
    return classifier
