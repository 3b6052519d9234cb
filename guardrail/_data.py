"""The labelled safety data in ``../shared/data``: typed rows, deduplication, train/dev split.

Every training, benchmark and audit script reads the data through these functions, so they all
see the same rows and the same split:

- ``load_rows(data_dir)`` reads every ``*.jsonl`` file into ``Row`` objects and removes
  duplicates across sets (JailbreakBench reuses AdvBench and HarmBench behaviours), keeping one
  row per normalised text and role, chosen deterministically.
- ``split_rows(rows)`` splits by a hash of each row's group (``split_key``): 80 % train, 20 %
  dev. Rows that share a text (BIPIA's clean and attacked copies of one document, a jade_db
  question and its answers, a KoSBi context and its sentence, one XQuAD question in 12
  languages) share a group, so no dev row has a near-copy in train. The split of a row never
  depends on which other rows were loaded, so it is stable as data sets are added.
- ``dev_split(data_dir)`` / ``train_split(data_dir)`` do both; ``group_by`` slices a split per
  source or language.

The rows stay in the data directory: nothing here copies them into the repository.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guardrail.errors import ConfigError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEV_FRACTION",
    "SOURCE_PRIORITY",
    "Row",
    "ci_slice",
    "dedupe_rows",
    "dev_split",
    "group_by",
    "hash_fraction",
    "load_rows",
    "normalise_text",
    "read_rows",
    "split_key",
    "split_of",
    "split_rows",
    "train_split",
]

DEFAULT_DATA_DIR = Path("../shared/data")
DEV_FRACTION = 0.2

# When the same text appears in several sets, the row from the earliest set here is kept: the
# original sets before the ones that reuse them (AdvBench and HarmBench before JailbreakBench).
# Sets not listed come after these, in file-name order.
SOURCE_PRIORITY: tuple[str, ...] = (
    "advbench",
    "harmbench",
    "simplesafetytests",
    "do_not_answer",
    "openai_moderation",
    "jbb_artifacts",
    "hatecheck",
    "mhc",
    "toxigen_demos",
    "cold",
    "kor_hate",
    "xquad",
    "self_instruct",
)

Split = Literal["train", "dev"]


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled text.

    Attributes:
        id: unique id within the data (``"mhc:arabic-1"``); the split is derived from it.
        text: the text to classify.
        role: ``"prompt"`` (user side, including standalone posts) or ``"response"``.
        prompt: for a response, the prompt it answers.
        lang: ISO 639-1 code, or None when the set does not say.
        unsafe: the data set's own binary label.
        categories: the data set's own label names (not the project's taxonomy).
        source: the data set (file stem), e.g. ``"mhc"``.
    """

    id: str
    text: str
    role: str
    prompt: str | None
    lang: str | None
    unsafe: bool
    categories: tuple[str, ...]
    source: str

    @property
    def split(self) -> Split:
        """``"train"`` or ``"dev"``, from the hash of the row's group (``split_key``)."""
        return split_of(split_key(self))


def read_rows(path: Path) -> list[Row]:
    """Read one JSONL file into rows (no deduplication).

    Raises:
        ConfigError: the file is missing, or a line is not a valid row.
    """
    rows = []
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    rows.append(_parse(line, path, lineno))
    except OSError as e:
        raise ConfigError(f"cannot read data file {path}: {e}") from e
    return rows


def _parse(line: str, path: Path, lineno: int) -> Row:
    try:
        obj = json.loads(line)
        return Row(
            id=str(obj["id"]),
            text=str(obj["text"]),
            role=str(obj.get("role") or "prompt"),
            prompt=obj.get("prompt"),
            lang=obj.get("lang"),
            unsafe=bool(obj["unsafe"]),
            categories=tuple(str(c) for c in obj.get("categories") or ()),
            source=str(obj.get("source") or path.stem),
        )
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}:{lineno}: not a valid data row: {e}") from e


def load_rows(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    *,
    sources: Iterable[str] | None = None,
    dedupe: bool = True,
) -> list[Row]:
    """Load the labelled rows of every ``*.jsonl`` file in ``data_dir``.

    Args:
        data_dir: the data directory (``../shared/data`` from the repository root).
        sources: load only these sets (file stems); None loads all.
        dedupe: remove duplicates across and within sets (see ``dedupe_rows``). Deduplication
            always runs over all sets, so a row kept here is the same row whatever ``sources``
            asks for.

    Returns:
        Rows in a deterministic order (by set priority, then file order).

    Raises:
        ConfigError: the directory has no data files, or a requested set is missing.
    """
    directory = Path(data_dir)
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no *.jsonl data files in {directory.resolve()}")
    stems = {f.stem for f in files}
    wanted = None if sources is None else set(sources)
    if wanted is not None and (missing := wanted - stems):
        raise ConfigError(f"data sets not found in {directory}: {', '.join(sorted(missing))}")
    files.sort(key=lambda f: (_priority(f.stem), f.stem))
    to_read = files if dedupe or wanted is None else [f for f in files if f.stem in wanted]
    rows = [row for f in to_read for row in read_rows(f)]
    if dedupe:
        rows = dedupe_rows(rows)
    return rows if wanted is None else [r for r in rows if r.source in wanted]


def _priority(source: str) -> int:
    return SOURCE_PRIORITY.index(source) if source in SOURCE_PRIORITY else len(SOURCE_PRIORITY)


_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalise_text(text: str) -> str:
    """The form used to detect duplicates: NFKC, case-folded, spaces collapsed, edge
    punctuation dropped (``"Write a bomb tutorial."`` == ``"write a  bomb tutorial"``)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text).strip()
    return _EDGE_PUNCT.sub("", text)


def dedupe_rows(rows: Iterable[Row]) -> list[Row]:
    """Keep the first row of each (normalised text, role); order is otherwise kept.

    Rows are expected in priority order (``load_rows`` sorts them), so a behaviour that
    JailbreakBench copied from AdvBench keeps its AdvBench row. Empty texts are dropped.
    """
    seen: set[tuple[str, str]] = set()
    out = []
    for row in rows:
        key = (normalise_text(row.text), row.role)
        if not key[0] or key in seen:
            continue
        seen.add(key)
        out.append(row)
    return out


def hash_fraction(data: bytes) -> float:
    """A stable number in [0, 1) for ``data``: the first 8 bytes of its SHA-256."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") / 2**64


def split_of(key: str, dev_fraction: float = DEV_FRACTION) -> Split:
    """The split a group key (``split_key``) belongs to: a hash, so it never changes."""
    return "dev" if hash_fraction(key.encode("utf-8")) < dev_fraction else "train"


_BIPIA_COPY = re.compile(r":(clean|end|start)(:.*)?$")
_KOSBI_PART = re.compile(r":(context|sentence)$")


def split_key(row: Row) -> str:
    """The group a row is split with: its id, except where sets hold near-copies.

    BIPIA: a document's clean copy and its attacked copies (``bipia:table:train:43:clean`` and
    ``...:43:end:Social Interaction-0``) share the part before ``:clean``/``:end``/``:start``.
    jade_db: a question and the answers to it share the question text. KoSBi: a context and the
    sentence written for it share their number. XQuAD: one question in its 12 languages shares
    its question id. NTREX: one news sentence in its language variants shares its line number
    (``ntrex:deu:23`` and ``ntrex:hin:23``; every variant samples the same 1,997 lines, so split
    row by row nearly every dev sentence had a translation of itself in train). One of the
    project's refusal or request seeds in its 15 languages shares its number
    (``ref_seed:refusal:3:de`` and ``...:3:ko``), and a harmful request seed shares its group
    with its benign twin and the two answer seeds written for them (``ask_seed:harm:7:de``,
    ``ask_seed:harm:7:twin:ko``, ``ans_seed:harm:7:comply:ja``).
    Every other row is its own group.
    """
    if row.source == "bipia":
        return _BIPIA_COPY.sub("", row.id)
    if row.source == "jade_db":
        question = row.prompt if row.role == "response" and row.prompt else row.text
        return "jade_db:" + normalise_text(question)
    if row.source == "kosbi":
        return _KOSBI_PART.sub("", row.id)
    if row.source in {"xquad", "ntrex"}:
        return f"{row.source}:" + row.id.rsplit(":", 1)[-1]
    if row.source in {"ask_seed", "ans_seed"}:
        return "ask_seed:" + ":".join(row.id.split(":")[1:3])
    if row.source == "ref_seed":
        return row.id.rsplit(":", 1)[0]
    return row.id


def split_rows(
    rows: Iterable[Row], dev_fraction: float = DEV_FRACTION
) -> tuple[list[Row], list[Row]]:
    """Split rows into ``(train, dev)`` by the hash of their groups (80/20 by default)."""
    train: list[Row] = []
    dev: list[Row] = []
    for row in rows:
        (dev if split_of(split_key(row), dev_fraction) == "dev" else train).append(row)
    return train, dev


def train_split(data_dir: str | Path = DEFAULT_DATA_DIR) -> list[Row]:
    """The deduplicated training rows of ``data_dir``."""
    return split_rows(load_rows(data_dir))[0]


def dev_split(
    data_dir: str | Path = DEFAULT_DATA_DIR, *, sources: Iterable[str] | None = None
) -> list[Row]:
    """The deduplicated dev rows of ``data_dir`` (never used for training).

    Args:
        data_dir: the data directory.
        sources: only these sets (file stems); None for all.
    """
    return split_rows(load_rows(data_dir, sources=sources))[1]


def group_by(rows: Iterable[Row], key: Callable[[Row], str | None]) -> dict[str, list[Row]]:
    """Group rows by a key, e.g. ``group_by(dev, lambda r: r.lang)`` or ``lambda r: r.source``.

    Rows whose key is None are grouped under ``"und"``. Groups come back sorted by key.
    """
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(key(row) or "und", []).append(row)
    return dict(sorted(groups.items()))


def ci_slice(dev: Iterable[Row], n: int = 500, *, max_chars: int = 600) -> list[Row]:
    """A fixed, small slice of dev for regression tests: the first ``n`` rows of at most
    ``max_chars`` characters in the order of a hash of their ids (so every set is represented
    about in proportion and the slice never changes while the data does not)."""
    short = [r for r in dev if len(r.text) <= max_chars]
    short.sort(key=lambda r: hashlib.sha256(f"ci:{r.id}".encode()).hexdigest())
    return short[:n]
