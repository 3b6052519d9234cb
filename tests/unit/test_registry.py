"""The classifier registry: decorator, entry points (a fake installed distribution), errors."""

from __future__ import annotations

import sys
import textwrap

import pytest
from pydantic import BaseModel, ConfigDict

from guardrail import ConfigError, Guard, UnknownClassifierError, load_policy, registry
from guardrail.policy import ClassifierSpec
from guardrail.types import ScoreSet


class _Const:
    name = "const"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        value: float = 0.5

    def __init__(self, options, *, taxonomy):
        self.value = options.value

    def score(self, samples):
        return [ScoreSet(unsafe=self.value, classifier=self.name) for _ in samples]


def test_decorator_registers_and_validates_options(isolated_registry):
    registry.register_classifier("const")(_Const)
    assert "const" in registry.known_classifiers()
    spec = ClassifierSpec(name="const", options={"value": 0.9})
    classifier = registry.create_classifier(spec, taxonomy=load_policy("default").resolved_taxonomy)
    assert classifier.score.__self__.value == 0.9
    with pytest.raises(ConfigError, match="valu"):
        registry.validate_options(ClassifierSpec(name="const", options={"valu": 1}))


def test_duplicate_name_is_config_error(isolated_registry):
    registry.register_classifier("const")(_Const)
    registry.register_classifier("const")(_Const)  # the same class again is harmless

    class Other(_Const):
        pass

    with pytest.raises(ConfigError, match="already registered"):
        registry.register_classifier("const")(Other)


def test_unknown_name_lists_known(isolated_registry):
    with pytest.raises(UnknownClassifierError) as info:
        registry.get_classifier_factory("nope")
    assert "rules" in info.value.known and "fake" in info.value.known
    assert "known classifiers:" in str(info.value)


def test_class_without_score_rejected(isolated_registry):
    class NoScore:
        pass

    with pytest.raises(ConfigError, match="no score"):
        registry.register_classifier("noscore")(NoScore)


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution `fake-plugin` declaring two guardrail.classifiers entry points."""
    pkg = tmp_path / "fake_guard_plugin.py"
    pkg.write_text(
        textwrap.dedent("""
        from guardrail.types import ScoreSet

        class PluginClassifier:
            name = "from-plugin"

            def __init__(self, options, *, taxonomy):
                pass

            def score(self, samples):
                return [ScoreSet(unsafe=0.99, classifier=self.name) for _ in samples]
    """)
    )
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("import does_not_exist_anywhere\n")
    dist = tmp_path / "fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[guardrail.classifiers]\n"
        "from-plugin = fake_guard_plugin:PluginClassifier\n"
        "broken = broken_plugin:Thing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("fake_guard_plugin", None)


def test_entry_point_plugin_is_found(isolated_registry, fake_distribution, monkeypatch, tmp_path):
    monkeypatch.setenv("GUARDRAIL_PLUGINS", "from-plugin")
    assert "from-plugin" in registry.known_classifiers()
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text(
        "name: p\nclassifier: {name: from-plugin}\n"
        "thresholds: {prompt: {unsafe: {block_at: 0.9}}}\n"
    )
    guard = Guard.from_policy(policy_file)
    assert guard.check_prompt("anything at all").blocked


def test_plugins_env_pins_what_loads(isolated_registry, fake_distribution, monkeypatch):
    monkeypatch.setenv("GUARDRAIL_PLUGINS", "")
    assert "from-plugin" not in registry.known_classifiers()


def test_broken_plugin_is_a_config_error(isolated_registry, fake_distribution, monkeypatch):
    monkeypatch.setenv("GUARDRAIL_PLUGINS", "broken")
    with pytest.raises(ConfigError, match="broken.*failed to import"):
        registry.known_classifiers()
