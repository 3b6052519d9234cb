"""Streaming readers for JSONL, CSV, Parquet and Hugging Face datasets saved to disk.

Every reader yields lists of ``Record`` in input order, ``batch_size`` at a time, and never holds
more than one batch (plus the format's own read buffer) in memory. A row that cannot be decoded
becomes a ``Record`` with an ``error`` instead of stopping the run.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guardrail.errors import ConfigError

__all__ = ["FORMATS", "Format", "Record", "count_rows", "detect_format", "iter_records"]

Format = Literal["jsonl", "csv", "parquet", "hf"]
FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "hf")
_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True, slots=True)
class Record:
    """One input row: its position, its fields, or why it could not be read."""

    row: int
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def detect_format(path: Path, fmt: str | None = None) -> Format:
    """The input format: given, or from the suffix (a directory is a saved HF dataset).

    Raises:
        ConfigError: missing input or an unknown format.
    """
    if not path.exists():
        raise ConfigError(f"input not found: {path}")
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown input format {fmt!r}; known: {', '.join(FORMATS)}")
        return _needs_pyarrow(fmt)  # type: ignore[arg-type]  # checked against FORMATS above
    if path.is_dir():
        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            return _needs_pyarrow("hf")
        raise ConfigError(f"{path} is a directory but not a dataset saved with save_to_disk")
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ConfigError(
            f"cannot tell the format of {path.name}; pass --format ({', '.join(FORMATS)})"
        )
    return _needs_pyarrow(found)


def _needs_pyarrow(fmt: Format) -> Format:
    if fmt in ("parquet", "hf"):
        from .writer import require_pyarrow

        require_pyarrow(f"reading {fmt}")
    return fmt


def iter_records(
    path: Path, fmt: Format, *, batch_size: int, skip: int = 0
) -> Iterator[list[Record]]:
    """Yield the input's rows in batches, skipping the first ``skip`` rows cheaply.

    Args:
        path: the input file (or dataset directory).
        fmt: its format.
        batch_size: rows per batch.
        skip: rows already done (a resumed run); they are counted, not parsed.

    Raises:
        ConfigError: the file cannot be opened or is not of the format.
    """
    source = {
        "jsonl": _jsonl,
        "csv": _csv,
        "parquet": _parquet,
        "hf": _hf,
    }[fmt](path, skip, batch_size)
    batch: list[Record] = []
    for record in source:
        batch.append(record)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def count_rows(path: Path, fmt: Format) -> int | None:
    """The number of rows (for the progress bar's ETA): metadata, or a quick pass.

    None when the file cannot be read (the reader then reports why).
    """
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (pa.ArrowInvalid, OSError):
            return None  # unreadable: the reader says so with a ConfigError
    if fmt == "jsonl":
        n = 0
        with path.open("rb") as f:
            for line in f:
                n += bool(line.strip())
        return n
    if fmt == "hf":
        return sum(_arrow_rows(p) for p in _hf_files(path))
    return _csv_rows(path)


def _csv_rows(path: Path) -> int:
    # A real CSV pass (quoted fields may hold newlines); the csv module is C and quick.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        return max(0, sum(1 for _ in csv.reader(f)) - 1)


def _jsonl(path: Path, skip: int, _batch: int) -> Iterator[Record]:
    row = 0
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue  # blank lines are not rows (and a trailing newline is normal)
            row += 1
            if row <= skip:
                continue
            yield _jsonl_record(row - 1, line)


def _jsonl_record(row: int, line: bytes) -> Record:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return Record(row, error=f"invalid UTF-8 at byte {e.start}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return Record(row, error=f"invalid JSON: {e.msg} (column {e.colno})")
    except RecursionError:
        return Record(row, error="invalid JSON: nested too deeply")
    if not isinstance(value, dict):
        return Record(row, error=f"line is a JSON {type(value).__name__}, not an object")
    return Record(row, value)


def _csv(path: Path, skip: int, _batch: int) -> Iterator[Record]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad row is reported
    # as that row's error instead of failing the whole file.
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.DictReader(f)
        for row, values in enumerate(reader):
            if row < skip:
                continue
            bad = [k for k, v in values.items() if isinstance(v, str) and _has_surrogate(v)]
            if bad:
                yield Record(row, error=f"invalid UTF-8 in column {bad[0]!r}")
            elif None in values:
                yield Record(row, error="more fields than the header names")
            else:
                yield Record(row, dict(values))


def _has_surrogate(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _parquet(path: Path, skip: int, batch: int) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ConfigError(f"{path}: not a readable Parquet file: {e}") from e
    yield from _arrow_batches(file.iter_batches(batch_size=batch), skip)


def _hf_files(path: Path) -> list[Path]:
    state = path / "state.json"
    if not state.exists():
        if (path / "dataset_dict.json").exists():
            raise ConfigError(
                f"{path} holds several splits (a DatasetDict); point at one split's folder, "
                f"e.g. {path / 'train'}"
            )
        raise ConfigError(f"{path}: no state.json; not a dataset saved with save_to_disk")
    try:
        files = json.loads(state.read_text(encoding="utf-8"))["_data_files"]
        return [path / f["filename"] for f in files]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{state}: unreadable dataset state: {e}") from e


def _arrow_rows(path: Path) -> int:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return sum(b.num_rows for b in pa.ipc.open_stream(source))


def _hf(path: Path, skip: int, _batch: int) -> Iterator[Record]:
    # A saved dataset is Arrow IPC stream files listed in state.json; reading them with pyarrow
    # memory-maps the data, so `datasets` itself is not needed.
    import pyarrow as pa

    def batches() -> Iterator[Any]:
        for file in _hf_files(path):
            with pa.memory_map(str(file)) as source:
                yield from pa.ipc.open_stream(source)

    yield from _arrow_batches(batches(), skip)


def _arrow_batches(batches: Iterator[Any], skip: int) -> Iterator[Record]:
    row = 0
    for rb in batches:
        n = rb.num_rows
        if row + n <= skip:
            row += n
            continue
        start = max(0, skip - row)
        for offset, values in enumerate(rb.slice(start).to_pylist()):
            yield Record(row + start + offset, values)
        row += n
