"""The local audit runner: read in batches, score with ``Guard.check_many``, commit in order."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guardrail.errors import ConfigError
from guardrail.guard import Guard
from guardrail.policy import Policy, load_policy

from .fields import FieldSpec, check_columns, check_label_map, prepare
from .readers import Format, count_rows, detect_format, iter_records
from .scoring import score_batch
from .writer import CommitBuffer, ResultWriter

__all__ = ["AuditConfig", "AuditSummary", "open_writer", "run_audit"]


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """Everything one audit run needs.

    Attributes:
        input: the input file, or the folder of a dataset saved with ``save_to_disk``.
        out: the output file (``.parquet`` or ``.jsonl``).
        fields: which columns mean what.
        policy: a built-in policy name, a policy YAML path, or a ``Policy``.
        input_format: ``jsonl``, ``csv``, ``parquet`` or ``hf`` (from the suffix when None).
        batch_size: rows per ``check_many`` call.
        commit_rows: commit a part at least every this many rows.
        commit_s: and at least this often (seconds), so a crash loses little work.
        overwrite: discard an existing output or unfinished run.
        progress: show a progress bar on standard error.
        engine: ``local`` or ``ray``.
        ray_workers: number of Ray scoring actors (``ray`` engine).
    """

    input: Path
    out: Path
    fields: FieldSpec = field(default_factory=FieldSpec)
    policy: str | Path | Policy = "default"
    input_format: str | None = None
    batch_size: int = 64
    commit_rows: int = 10_000
    commit_s: float = 5.0
    overwrite: bool = False
    progress: bool = True
    engine: Literal["local", "ray"] = "local"
    ray_workers: int = 1


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """What a run did."""

    out: Path
    rows: int
    rows_this_run: int
    errors: int
    resumed_from: int
    elapsed_s: float
    policy: str
    classifier: str
    engine: str

    @classmethod
    def of(
        cls,
        writer: ResultWriter,
        config: AuditConfig,
        policy: Policy,
        resumed_from: int,
        errors: int,
        started: float,
        engine: str,
    ) -> AuditSummary:
        """The summary of a finished run (``started`` is a ``perf_counter`` reading)."""
        return cls(
            out=config.out,
            rows=writer.rows_done,
            rows_this_run=writer.rows_done - resumed_from,
            errors=errors,
            resumed_from=resumed_from,
            elapsed_s=time.perf_counter() - started,
            policy=policy.name,
            classifier=policy.classifier.name,
            engine=engine,
        )

    @property
    def rows_per_s(self) -> float:
        """Rows scored per second by this process."""
        return self.rows_this_run / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (for the report's metadata)."""
        return {
            "out": str(self.out),
            "rows": self.rows,
            "rows_this_run": self.rows_this_run,
            "errors_this_run": self.errors,
            "resumed_from": self.resumed_from,
            "elapsed_s": round(self.elapsed_s, 3),
            "rows_per_s": round(self.rows_per_s, 1),
            "policy": self.policy,
            "classifier": self.classifier,
            "engine": self.engine,
        }


def resolve_policy(policy: str | Path | Policy) -> Policy:
    """Load a policy given by name or path (a ``Policy`` passes through)."""
    return policy if isinstance(policy, Policy) else load_policy(policy)


def _fingerprint(config: AuditConfig, policy: Policy, fmt: Format) -> dict[str, Any]:
    stat = config.input.stat()
    return {
        "input": str(config.input.resolve()),
        "input_format": fmt,
        # Size and modification time: a changed input must not be resumed as if it were the same.
        "input_size": stat.st_size if config.input.is_file() else _dir_size(config.input),
        "input_mtime_ns": stat.st_mtime_ns,
        "fields": config.fields.fingerprint(),
        "policy_hash": policy.content_hash,
    }


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def open_writer(config: AuditConfig, policy: Policy) -> tuple[ResultWriter, Format]:
    """Check the settings and open (or resume) the output.

    Raises:
        ConfigError: bad input, output, label map, or a conflicting unfinished run.
    """
    fmt = detect_format(config.input, config.input_format)
    check_label_map(config.fields.label_map, set(policy.resolved_taxonomy.ids))
    writer = ResultWriter(
        config.out,
        fingerprint=_fingerprint(config, policy, fmt),
        overwrite=config.overwrite,
    )
    return writer, fmt


def run_audit(config: AuditConfig, *, guard: Guard | None = None) -> AuditSummary:
    """Score every input row and write the output; resumes an unfinished run with the same settings.

    Args:
        config: the run's settings.
        guard: use this guard (e.g. with a test classifier) instead of building the policy's.

    Returns:
        A summary of the run.

    Raises:
        ConfigError: bad settings (see ``open_writer``).
    """
    policy = guard.policy if guard is not None else resolve_policy(config.policy)
    writer, fmt = open_writer(config, policy)
    if config.engine == "ray":
        from .ray_runner import run_ray

        return run_ray(config, policy, writer, fmt)
    guard = guard or Guard(policy)
    started = time.perf_counter()
    resumed_from = writer.rows_done
    errors = 0
    if not writer.complete:
        try:
            errors = _score_all(config, guard, writer, fmt)
        except ConfigError:
            writer.discard_if_empty()
            raise
    writer.finish()
    return AuditSummary.of(writer, config, policy, resumed_from, errors, started, "local")


def _score_all(config: AuditConfig, guard: Guard, writer: ResultWriter, fmt: Format) -> int:
    from tqdm import tqdm

    # Counting reads the whole input once more; only the progress bar needs the total.
    total = count_rows(config.input, fmt) if config.progress else None
    errors = 0
    pending = CommitBuffer(writer, rows=config.commit_rows, seconds=config.commit_s)
    with tqdm(
        total=total,
        initial=writer.rows_done,
        unit="rows",
        desc="audit",
        disable=not config.progress,
        file=sys.stderr,
        mininterval=0.5,
        smoothing=0.1,
    ) as bar:
        batches = iter_records(
            config.input, fmt, batch_size=config.batch_size, skip=writer.rows_done
        )
        for n, records in enumerate(batches):
            if n == 0:
                check_columns(records, config.fields)
            rows = score_batch(guard, [prepare(r, config.fields) for r in records])
            errors += sum(r["error"] is not None for r in rows)
            pending.add(rows)
            bar.update(len(rows))
        pending.flush()
    return errors
