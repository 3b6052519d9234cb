"""Backends on Hugging Face models: transformers loading, guard-LLM families, generation.

``hf_sequence`` (sequence classifiers), ``hf_generative`` (guard LLMs run locally) and
``openai_guard`` (the same guard LLMs behind an OpenAI-compatible server) register themselves
by name; the private modules hold the model loading (``_loading``), the family prompts and
parsers (``_families`` and one module a family), the family choice (``_select``), generation
(``_generate``) and the label-to-taxonomy translation (``_taxonomy``).
"""
