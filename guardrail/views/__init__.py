"""Text views against obfuscation: the forms of a text that are scored besides the text itself.

The public surface is ``guardrail.views.normalize`` (the ``Normalization`` settings and
``view_samples``); the private modules behind it decode (base64, hex, ROT13, URL escapes), fold
Unicode (confusables, invisible characters, NFKC) and split mixed-language texts into parts.
May import the core below it (types, language, errors) and nothing above.
"""
