"""An audit run's settings (``AuditConfig``) and what it did (``AuditSummary``).

Shared by the local runner (``runner``) and the Ray one (``ray_runner``), which both import it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guardrail.policy import Policy

from .fields import FieldSpec
from .writer import ResultWriter

__all__ = ["AuditConfig", "AuditSummary"]


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
        redacted_text: write each row's text with the personal data and secrets the policy
            finds replaced by placeholders (``redacted_text`` column; the policy needs an
            ``entities`` section).
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
    redacted_text: bool = False


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
