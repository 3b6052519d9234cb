"""Incremental, crash-safe output: parts plus a manifest, merged into one file at the end.

While a run is going, results go to a work folder beside the output (``results.parquet.audit/``):
numbered part files, each written to a temporary name, flushed to disk and renamed, and a
``manifest.json`` (replaced the same way) that lists the committed parts and how many input
rows they cover. The manifest is the only source of truth: a part that was renamed but not yet
recorded when the process died is simply written again. Rows are committed in input order, so
the rows done are always a prefix of the input and a restart skips exactly that many.

When every row is done the parts are merged into the output file (again via a temporary name and
an atomic rename) and the work folder is removed. A crash during the merge is repaired by the
next run, which finds a complete manifest and merges again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from guardrail.errors import ConfigError, install_hint

__all__ = [
    "OutputFormat",
    "ResultWriter",
    "iter_output",
    "output_format",
    "output_schema",
    "require_pyarrow",
]

OutputFormat = Literal["parquet", "jsonl"]
MANIFEST = "manifest.json"
_VERSION = 1


def output_format(path: Path) -> OutputFormat:
    """``parquet`` or ``jsonl`` from the output's suffix.

    Raises:
        ConfigError: another suffix.
    """
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        require_pyarrow("Parquet output")
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ConfigError(f"--out must end in .parquet or .jsonl, got {path.name!r}")


def require_pyarrow(what: str) -> None:
    """Fail with the install command when pyarrow is missing.

    Raises:
        ConfigError: pyarrow is not installed.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"{what} needs pyarrow: {install_hint('audit')}") from e


def output_schema() -> Any:
    """The Arrow schema of the output (one row per input row)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("row", pa.int64()),
            ("id", pa.string()),
            ("role", pa.string()),
            ("action", pa.string()),
            ("unsafe", pa.float64()),
            ("categories", pa.map_(pa.string(), pa.float64())),
            ("fired", pa.list_(pa.string())),
            ("language", pa.string()),
            ("language_confidence", pa.float64()),
            ("decided_by", pa.list_(pa.string())),
            ("label", pa.bool_()),
            ("label_category", pa.string()),
            ("error", pa.string()),
            ("entities", pa.map_(pa.string(), pa.int64())),
            ("redacted_text", pa.string()),
        ]
    )


def _fsync_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    # Renames are durable only once the directory entry is on disk too.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CommitBuffer:
    """Rows waiting for a ``ResultWriter.commit``: every ``rows`` rows or ``seconds`` seconds.

    The bound on what a crash can lose; the check runs after each ``add``.
    """

    def __init__(self, writer: ResultWriter, *, rows: int, seconds: float) -> None:
        self.writer = writer
        self.rows = rows
        self.seconds = seconds
        self._buffer: list[dict[str, Any]] = []
        self._last = time.monotonic()

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows (in input order); commit when either bound is reached."""
        self._buffer.extend(rows)
        if len(self._buffer) >= self.rows or time.monotonic() - self._last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        """Commit what is queued."""
        self.writer.commit(self._buffer)
        self._buffer, self._last = [], time.monotonic()


# Fingerprint keys as the user knows them (command-line options, or what changed on disk).
_SETTING_NAMES = {
    "input": "input",
    "input_format": "--format",
    "input_size": "input size (the file changed)",
    "input_mtime_ns": "input modification time (the file changed)",
    "policy_hash": "--policy (its content hash)",
    "text_field": "--text-field",
    "prompt_field": "--prompt-field",
    "id_field": "--id-field",
    "role": "--role",
    "role_field": "--role-field",
    "label_field": "--label-field",
    "label_map": "--label-map",
    "language_field": "--language-field",
}


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between the fingerprint of an unfinished run and this one, one
    ``"setting: was X, now Y"`` per setting (nested ``fields`` flattened)."""

    def flat(fp: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in fp.items() if k != "fields"}
        out.update(fp.get("fields") or {})
        return out

    before, after = flat(old), flat(new)
    changes = []
    for key in [*after, *(k for k in before if k not in after)]:
        if before.get(key) != after.get(key):
            name = _SETTING_NAMES.get(key, key)
            changes.append(f"{name}: was {before.get(key)!r}, now {after.get(key)!r}")
    return changes or ["the manifest's settings could not be compared"]


class ResultWriter:
    """Writes result rows in committed parts and merges them into the output at the end.

    Args:
        out: the final output file (``.parquet`` or ``.jsonl``).
        fingerprint: the settings of the run; a restart must match them to resume.
        overwrite: discard an existing output or unfinished run instead of failing.

    Raises:
        ConfigError: the output exists, or an unfinished run with other settings exists.
    """

    def __init__(self, out: Path, *, fingerprint: dict[str, Any], overwrite: bool = False) -> None:
        self.out = out
        self.format = output_format(out)
        self.workdir = out.with_name(out.name + ".audit")
        self.fingerprint = fingerprint
        self.parts: list[dict[str, int]] = []
        self.rows_done = 0
        self.complete = False
        self._open(overwrite)

    def _open(self, overwrite: bool) -> None:
        manifest = self.workdir / MANIFEST
        if overwrite:
            shutil.rmtree(self.workdir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                self.out.unlink()
        if manifest.exists():
            state = json.loads(manifest.read_text(encoding="utf-8"))
            if state.get("fingerprint") != self.fingerprint:
                changes = fingerprint_changes(state.get("fingerprint") or {}, self.fingerprint)
                raise ConfigError(
                    f"{self.workdir} holds an unfinished run with different settings ("
                    + "; ".join(changes)
                    + "); rerun with the same arguments to resume, or pass --overwrite to "
                    "start over"
                )
            self.parts = list(state["parts"])
            self.rows_done = int(state["rows_done"])
            self.complete = bool(state["complete"])
            return
        if self.out.exists():
            raise ConfigError(
                f"{self.out} already exists (a finished run); pass --overwrite to redo it"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._save_manifest()

    def _save_manifest(self) -> None:
        state = {
            "version": _VERSION,
            "fingerprint": self.fingerprint,
            "parts": self.parts,
            "rows_done": self.rows_done,
            "complete": self.complete,
        }
        _fsync_write(self.workdir / MANIFEST, json.dumps(state, indent=1).encode())
        _fsync_dir(self.workdir)

    def _part_path(self, index: int) -> Path:
        return self.workdir / f"part-{index:06d}.{self.format}"

    def commit(self, rows: list[dict[str, Any]]) -> None:
        """Durably append rows (in input order) and record them in the manifest."""
        if not rows:
            return
        path = self._part_path(len(self.parts))
        _fsync_write(path, self._encode(rows))
        self.parts.append({"rows": len(rows), "first_row": int(rows[0]["row"])})
        self.rows_done += len(rows)
        self._save_manifest()

    def _encode(self, rows: list[dict[str, Any]]) -> bytes:
        if self.format == "jsonl":
            return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=output_schema())
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        return bytes(sink.getvalue().to_pybytes())

    def discard_if_empty(self) -> None:
        """Remove the work folder of a run that committed nothing (e.g. failed on a bad option)."""
        if self.rows_done == 0 and not self.complete:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def finish(self) -> Path:
        """Mark the run complete, merge the parts into the output and remove the work folder."""
        if not self.complete:
            self.complete = True
            self._save_manifest()
        tmp = self.out.with_name(self.out.name + ".tmp")
        paths = [self._part_path(i) for i in range(len(self.parts))]
        if self.format == "jsonl":
            _merge_jsonl(paths, tmp)
        else:
            _merge_parquet(paths, tmp)
        os.replace(tmp, self.out)
        _fsync_dir(self.out.parent)
        shutil.rmtree(self.workdir)
        return self.out


def _merge_jsonl(parts: list[Path], tmp: Path) -> None:
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, out)
        out.flush()
        os.fsync(out.fileno())


def _merge_parquet(parts: list[Path], tmp: Path) -> None:
    import pyarrow.parquet as pq

    with pq.ParquetWriter(tmp, output_schema(), compression="zstd") as writer:
        for part in parts:
            # One part at a time: memory stays at one part's size however many there are.
            writer.write_table(pq.read_table(part, schema=output_schema()))
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())


def iter_output(path: Path, *, batch_size: int = 4096) -> Iterator[list[dict[str, Any]]]:
    """Read an audit output file back in batches of row dicts (categories as a dict)."""
    if output_format(path) == "jsonl":
        batch: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    batch.append(json.loads(line))
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch
        return
    import pyarrow.parquet as pq

    for rb in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        rows = rb.to_pylist()
        for r in rows:
            cats = r.get("categories")
            r["categories"] = dict(cats) if cats else {}
            found = r.get("entities")
            r["entities"] = dict(found) if found else {}
        yield rows
