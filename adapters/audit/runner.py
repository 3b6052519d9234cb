"""The local audit runner: read in batches, score with ``Guard.check_many``, commit in order."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError
from guardrail.guard import Guard
from guardrail.policy import Policy, load_policy

from .config import AuditConfig, AuditSummary
from .fields import check_columns, check_label_map, prepare
from .ray_runner import run_ray
from .readers import Format, count_rows, detect_format, iter_records
from .scoring import score_batch
from .writer import CommitBuffer, ResultWriter

__all__ = ["AuditConfig", "AuditSummary", "open_writer", "run_audit"]


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
        "redacted_text": config.redacted_text,
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
            prepared = [prepare(r, config.fields) for r in records]
            rows = score_batch(guard, prepared, redacted_text=config.redacted_text)
            errors += sum(r["error"] is not None for r in rows)
            pending.add(rows)
            bar.update(len(rows))
        pending.flush()
    return errors
