"""Classifier backends. Each registers itself by name; see ``guardrail.registry``."""

from guardrail.classifiers.base import Classifier, ClassifierFactory, NoOptions

__all__ = ["Classifier", "ClassifierFactory", "NoOptions"]
