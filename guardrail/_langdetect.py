"""langdetect's detection loop with numpy, giving bit-identical probabilities, several times faster.

langdetect (``Detector._detect_block``) runs 7 trials from a ``random.Random`` seeded with the
factory's seed; each trial multiplies a probability per language (55) by the profile row of a
randomly chosen n-gram until the normalised maximum passes 0.99999, in a pure-Python loop over
the languages. Here the same trials consume the same random numbers and do the same
floating-point operations in the same order:

* The seed is fixed, so the generator's output words are the same for every text: they are
  drawn once (``getrandbits``) and each detection walks them as ``random.choice`` and
  ``random.gauss`` would (rejection sampling on the top bits; two 53-bit ``random()`` values a
  pair of normal deviates). ``_stream_ok`` checks that walk against a real ``random.Random``
  once a process; if it ever differs (another Python), or a detection needs more words than
  were drawn, langdetect's plain loop runs instead (``_detect_python``, same results).
* ``prob[i] *= weight + row[i]`` is elementwise, so numpy rounds exactly as Python does.
* The normalising sum is Python's own ``sum`` over the list (numpy sums pairwise, and Python
  3.12 made ``sum`` of floats compensated: calling it keeps us equal on every version).

Text cleaning is langdetect's, with regular expressions instead of its per-character loops;
n-gram extraction is its state machine inlined, with the
per-character normalisation memoised and, as the state resets at every space, the rows of each
space-separated word memoised too. ``tests/unit/test_language.py`` checks equality with
``Detector.get_probabilities`` (and the n-grams with ``_extract_ngrams``) on a multilingual
sample and on rows of every data set; ``tests/unit/test_langdetect_extract.py`` checks the
per-word extraction against the per-character one.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import re
import threading
from typing import Any

import numpy as np

__all__ = ["FastProfiles"]

# Generator words precomputed per seed. A detection takes at most 7 trials x 1001 draws, each
# draw one word or more (fewer than two on average), plus 4 words per pair of trials; a walk
# that runs out falls back to langdetect's loop.
_WORDS = 1 << 16
_TWOPI = 2.0 * math.pi
# The per-word n-gram caches (``FastProfiles._extract``): a cache is emptied when it holds its
# limit of words (words followed by a space; text-final words, one a text, have a smaller one),
# and words longer than _CACHED_WORD_CHARS (0.5% of words in the shared data, seldom repeated)
# are not kept. Full, they hold ~20 MB on real text and ~30 MB at worst.
_CACHED_WORDS = 50_000
_CACHED_FINAL_WORDS = 10_000
_CACHED_WORD_CHARS = 20


def _words(seed: int, count: int) -> np.ndarray:
    """The first ``count`` 32-bit outputs of ``random.Random(seed)``, in order."""
    bits = random.Random(seed).getrandbits(32 * count)
    return np.frombuffer(bits.to_bytes(4 * count, "little"), dtype="<u4").astype(np.int64)


def _uniform(words: np.ndarray, pos: int) -> float:
    """``random.random()`` from the two words at ``pos`` (CPython's genrand_res53)."""
    a = int(words[pos]) >> 5
    b = int(words[pos + 1]) >> 6
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)


class _Walk:
    """A position in the seeded stream, drawing as ``random.gauss`` and ``random.choice``."""

    def __init__(self, words: np.ndarray) -> None:
        self.words = words
        self.pos = 0
        self.gauss_next: float | None = None

    def gauss(self, mu: float, sigma: float) -> float | None:
        z = self.gauss_next
        self.gauss_next = None
        if z is None:
            if self.pos + 4 > len(self.words):
                return None
            x2pi = _uniform(self.words, self.pos) * _TWOPI
            g2rad = math.sqrt(-2.0 * math.log(1.0 - _uniform(self.words, self.pos + 2)))
            self.pos += 4
            z = math.cos(x2pi) * g2rad
            self.gauss_next = math.sin(x2pi) * g2rad
        return mu + z * sigma

    def choices(self, n: int, want: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The next ``want`` draws of ``randbelow(n)`` and the index of the word each used.

        Looks ahead without moving: the caller advances ``pos`` past the draws it used.
        """
        shift = 32 - n.bit_length()
        size = 4 * want  # acceptance is above 1/2: this nearly always suffices
        while True:
            window = self.words[self.pos : self.pos + size] >> shift
            accepted = np.flatnonzero(window < n)[:want]
            if len(accepted) == want:
                return window[accepted], accepted
            if self.pos + size >= len(self.words):
                return None
            size *= 4


_SPACE_RUNS = re.compile(" {2,}")
# langdetect's Latin, 'A' <= ch <= 'z' (brackets and all), as a table deleting it.
_DROP_LATIN: dict[int, None] = dict.fromkeys(range(ord("A"), ord("z") + 1))


@functools.lru_cache(maxsize=1)
def _non_latin() -> re.Pattern[str]:
    """Characters ``Detector.cleaning_text`` counts as not Latin: from U+0300 on, but not the
    Latin Extended Additional block where the installed langdetect's ``unicode_block`` gives
    block names (langdetect 1.0.9's gives numbers, so no character is excluded there)."""
    from langdetect.utils.unicode_block import unicode_block

    if unicode_block("\u1e00") == "Latin Extended Additional":
        return re.compile("[\u0300-\u1dff\u1f00-\U0010ffff]")
    return re.compile("[\u0300-\U0010ffff]")


def _cleaned(text: str, detector: Any) -> str:
    """``detector.append(text)`` then ``detector.cleaning_text()``, as one string.

    langdetect does both a character at a time in Python; the same steps with regular
    expressions: URLs and e-mail addresses to spaces, Vietnamese normalised, cut to
    ``max_text_length``, runs of spaces to one; then, where non-Latin characters are more than
    twice the Latin ones, the Latin ones removed.
    """
    from langdetect.utils.ngram import NGram

    text = detector.URL_RE.sub(" ", text)
    text = detector.MAIL_RE.sub(" ", text)
    text = NGram.normalize_vi(text)
    text = _SPACE_RUNS.sub(" ", text[: detector.max_text_length])
    without_latin = text.translate(_DROP_LATIN)
    latin = len(text) - len(without_latin)
    non_latin = len(text) - len(_non_latin().sub("", text))
    return without_latin if 2 * latin < non_latin else text


class _Normalized(dict[int, str]):
    """``str.translate`` table of langdetect's per-character normalisation, filled on use."""

    def __missing__(self, code: int) -> str:
        from langdetect.utils.ngram import NGram

        ch = str(NGram.normalize(chr(code)))
        self[code] = ch
        return ch


class FastProfiles:
    """langdetect's language profiles as one matrix (n-grams x languages), and detection.

    Build it with ``load`` (from langdetect's profile files, as ``DetectorFactory.load_profile``
    reads them, without the factory's ~60 MB table of Python lists) or ``from_factory``.
    """

    def __init__(self, langlist: list[str], row: dict[str, int], matrix: np.ndarray) -> None:
        from langdetect.detector import Detector
        from langdetect.detector_factory import DetectorFactory

        self.langlist = langlist
        self.row = row
        self.matrix = matrix[:, : len(langlist)]
        # Detectors are made only for langdetect's text cleaning: no table needed.
        self.factory = DetectorFactory()
        self.factory.langlist = list(langlist)
        self.factory.seed = 0
        self._alpha = Detector.ALPHA_DEFAULT
        self._alpha_width = Detector.ALPHA_WIDTH
        self._base_freq = Detector.BASE_FREQ
        self._conv = Detector.CONV_THRESHOLD
        self._limit = Detector.ITERATION_LIMIT
        self._threshold = Detector.PROB_THRESHOLD
        self._lock = threading.Lock()
        self._stream: dict[int, np.ndarray | None] = {}
        self._normalized = _Normalized()
        # Rows per normalised word (``_extract``): followed by a space, and last in the text.
        self._spaced: dict[str, tuple[int, ...]] = {}
        self._final: dict[str, tuple[int, ...]] = {}

    @classmethod
    def load(cls, directory: str | None = None) -> FastProfiles:
        """The profiles in ``directory`` (default: langdetect's own), seed 0.

        Same languages, order and probabilities as ``DetectorFactory.load_profile``: files in
        ``os.listdir`` order, dot files and folders skipped, each n-gram's probability
        ``1.0 * count / n_words[len - 1]``.
        """
        from langdetect.detector_factory import PROFILES_DIRECTORY

        directory = directory or PROFILES_DIRECTORY
        langlist: list[str] = []
        row: dict[str, int] = {}
        cells: list[tuple[int, int, float]] = []
        for filename in os.listdir(directory):
            path = os.path.join(directory, filename)
            if filename.startswith(".") or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as f:
                profile = json.load(f)
            index = len(langlist)
            langlist.append(str(profile["name"]))
            n_words = profile["n_words"]
            for word, count in profile["freq"].items():
                r = row.setdefault(word, len(row))
                if 1 <= len(word) <= 3:
                    cells.append((r, index, 1.0 * count / n_words[len(word) - 1]))
        matrix = np.zeros((len(row), len(langlist)))
        if cells:
            rows, cols, values = zip(*cells, strict=True)
            matrix[list(rows), list(cols)] = values
        return cls(langlist, row, matrix)

    @classmethod
    def from_factory(cls, factory: Any) -> FastProfiles:
        """The profiles a loaded ``DetectorFactory`` holds (its table is left as it is)."""
        table = factory.word_lang_prob_map
        words = list(table)
        matrix = np.array([table[w] for w in words], dtype=np.float64)
        return cls(list(factory.langlist), {w: i for i, w in enumerate(words)}, matrix)

    def probabilities(self, text: str) -> list[tuple[str, float]]:
        """``(language, probability)`` above 0.1, highest first, as ``get_probabilities``.

        Raises:
            LangDetectException: the text has no n-gram features (as langdetect does).
        """
        from langdetect.lang_detect_exception import ErrorCode, LangDetectException

        detector = self.factory.create()
        found_rows = self._extract(_cleaned(text, detector))
        if not found_rows:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        rows = np.array(found_rows, dtype=np.int64)
        words = self._words(detector.seed) if self._limit % 5 == 0 else None
        langprob = self._detect(rows, detector.n_trial, words) if words is not None else None
        if langprob is None:  # the precomputed stream ran out (or can't be trusted here)
            langprob = self._detect_python(rows.tolist(), detector.n_trial, detector.seed)
        found = [
            (lang, float(p))
            for lang, p in zip(self.langlist, langprob, strict=True)
            if p > self._threshold
        ]
        found.sort(key=lambda lp: lp[1], reverse=True)
        return found

    def posterior(self, text: str) -> dict[str, float]:
        """Naive-Bayes posterior over the languages from every n-gram of the text at once
        (uniform prior; each n-gram probability smoothed by langdetect's own weight,
        ``ALPHA_DEFAULT / BASE_FREQ``). Unlike ``probabilities`` it samples nothing, so it
        is a second opinion on short texts, where langdetect's trials often agree on a guess.
        Empty when the text has no n-gram features.
        """
        found_rows = self._extract(_cleaned(text, self.factory.create()))
        if not found_rows:
            return {}
        smoothing = self._alpha / self._base_freq
        loglik = np.log(self.matrix[found_rows] + smoothing).sum(axis=0)
        weights = np.exp(loglik - loglik.max())
        weights /= weights.sum()
        return {lang: float(w) for lang, w in zip(self.langlist, weights, strict=True)}

    def _extract(self, text: str) -> list[int]:
        """Profile rows of the text's n-grams, as ``Detector._extract_ngrams`` finds them.

        ``_extract_chars`` gives the same list; this memoises it per word. langdetect's state
        machine (``NGram.add_char``) starts from the state a space leaves (buffer ``" "``, not
        capital), and the character after any space resets to that state, so the rows are the
        concatenation, over the normalised text split at ``" "``, of each word's own rows: the
        word and the space after it, run from that state (the last word has no space after
        it; a space after a space or at the start adds nothing, so empty pieces add nothing).
        Only ``" "`` is special: normalisation maps every character to one character, ASCII
        tabs, newlines, digits and punctuation (and general punctuation) to ``" "``, and the
        state machine treats any other character, whitespace such as U+3000 included, alike.
        """
        pieces = text.translate(self._normalized).split(" ")
        last = pieces.pop()
        spaced = self._spaced
        out: list[int] = []
        for word in pieces:
            rows = spaced.get(word)
            if rows is None:
                rows = self._word_rows(spaced, word, " ", _CACHED_WORDS)
            out += rows
        rows = self._final.get(last)
        if rows is None:
            rows = self._word_rows(self._final, last, "", _CACHED_FINAL_WORDS)
        out += rows
        return out

    def _word_rows(
        self, cache: dict[str, tuple[int, ...]], word: str, end: str, limit: int
    ) -> tuple[int, ...]:
        """The rows of ``word + end`` (normalised, no space inside ``word``), kept if short.

        A full cache is emptied rather than trimmed: the dict's own get and set are safe under
        concurrent callers, where evicting entries one by one would iterate it.
        """
        rows = tuple(self._ngram_rows(word + end))
        if len(word) <= _CACHED_WORD_CHARS:
            if len(cache) >= limit:
                cache.clear()
            cache[word] = rows
        return rows

    def _extract_chars(self, text: str) -> list[int]:
        """``_extract`` one character at a time, without the per-word cache."""
        return self._ngram_rows(text.translate(self._normalized))

    def _ngram_rows(self, normalized: str) -> list[int]:
        """Profile rows of the n-grams of already-normalised text.

        The same state machine as langdetect's ``NGram.add_char`` (a buffer of the last three
        normalised characters, reset at spaces, skipped inside all-capital words), inlined.
        """
        row = self.row
        out: list[int] = []
        grams = " "
        capital = False
        for ch in normalized:
            last = grams[-1]
            if last == " ":
                grams = " "
                capital = False
                if ch == " ":
                    continue
            elif len(grams) >= 3:
                grams = grams[1:]
            grams += ch
            if ch.isupper():
                if last.isupper():
                    capital = True
            else:
                capital = False
            if capital:
                continue
            if ch != " ":
                r = row.get(ch)
                if r is not None:
                    out.append(r)
            if len(grams) >= 2:
                r = row.get(grams[-2:])
                if r is not None:
                    out.append(r)
                if len(grams) == 3:
                    r = row.get(grams)
                    if r is not None:
                        out.append(r)
        return out

    def _words(self, seed: Any) -> np.ndarray | None:
        if not isinstance(seed, int):
            return None
        with self._lock:
            if seed not in self._stream:
                words = _words(seed, _WORDS)
                self._stream[seed] = words if _stream_ok(seed, words) else None
            return self._stream[seed]

    def _detect(self, rows: np.ndarray, n_trial: int, words: np.ndarray) -> np.ndarray | None:
        langs = len(self.langlist)
        matrix = self.matrix
        walk = _Walk(words)
        langprob = np.zeros(langs)
        block = np.empty((6, langs))
        for _ in range(n_trial):
            prob = np.full(langs, 1.0 / langs)
            z = walk.gauss(0.0, 1.0)
            if z is None:
                return None
            weight = (self._alpha + z * self._alpha_width) / self._base_freq
            # Step i multiplies by the row of draw i; after steps 0, 5, 10, ... normalise and
            # stop once the maximum passes the threshold or i reaches the iteration limit.
            # Draws come in chunks (most trials stop within ~100 steps): the first chunk is
            # step 0 and 12 blocks of 5, the later ones whole blocks of 5; a block's five
            # products are one sequential reduction (the same roundings as five in a row).
            start, chunk, step = 0, 61, 0
            while True:
                drawn = walk.choices(len(rows), start + chunk)
                if drawn is None:
                    return None
                picks, used = drawn
                factors = matrix[rows[picks[start:]]]
                factors += weight
                j = 0
                if start == 0:
                    prob *= factors[0]
                    j = 1
                    if self._converged(prob, 0):
                        break
                done = False
                while j < len(factors):
                    block[0] = prob
                    block[1:] = factors[j : j + 5]
                    np.multiply.reduce(block, axis=0, out=prob)
                    j += 5
                    step = start + j - 1
                    if self._converged(prob, step):
                        done = True
                        break
                if done:
                    break
                start += chunk
                chunk = min(5 * (4 * chunk // 5), self._limit + 1 - start)
            walk.pos += int(used[step]) + 1
            langprob += prob / n_trial
        return langprob

    def _detect_python(self, rows: list[int], n_trial: int, seed: Any) -> np.ndarray:
        """langdetect's own loop (``Detector._detect_block``), on the matrix's rows."""
        langs = len(self.langlist)
        rng = random.Random()
        rng.seed(seed)
        langprob = [0.0] * langs
        for _ in range(n_trial):
            prob = [1.0 / langs] * langs
            alpha = self._alpha + rng.gauss(0.0, 1.0) * self._alpha_width
            i = 0
            while True:
                row = self.matrix[rng.choice(rows)].tolist()
                weight = alpha / self._base_freq
                for j in range(langs):
                    prob[j] *= weight + row[j]
                if i % 5 == 0:
                    maxp, sump = 0.0, sum(prob)
                    for j in range(langs):
                        p = prob[j] / sump
                        if maxp < p:
                            maxp = p
                        prob[j] = p
                    if maxp > self._conv or i >= self._limit:
                        break
                i += 1
            for j in range(langs):
                langprob[j] += prob[j] / n_trial
        return np.array(langprob)

    def _converged(self, prob: np.ndarray, step: int) -> bool:
        """langdetect's check after a step: normalise in place, then compare.

        Rounding is monotonic, so the largest quotient is the largest value's quotient.
        """
        values = prob.tolist()
        total = sum(values)
        prob /= total
        return bool(max(values) / total > self._conv) or step >= self._limit


def _stream_ok(seed: int, words: np.ndarray) -> bool:
    """Whether walking ``words`` draws what ``random.Random(seed)`` draws (gauss, choice)."""
    rng = random.Random(seed)
    walk = _Walk(words)
    for n in (1, 2, 3, 5, 7, 100, 1000, 4097, 65535):
        expected_z = rng.gauss(0.0, 1.0)
        expected = [rng.choice(range(n)) for _ in range(40)]
        z = walk.gauss(0.0, 1.0)
        drawn = walk.choices(n, 40)
        if z != expected_z or drawn is None:
            return False
        picks, used = drawn
        if picks.tolist() != expected:
            return False
        walk.pos += int(used[-1]) + 1
    return True
