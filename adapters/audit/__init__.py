"""Offline data-set auditing: score whole files with a policy, resumably, and report on them.

``run_audit`` streams JSONL, CSV, Parquet or a saved Hugging Face dataset through
``Guard.check_many`` in batches and writes one result row per input row (Parquet or JSONL),
committed as it goes so that a killed run resumes where it stopped. ``write_report`` turns the
results into one self-contained HTML file; ``calibrate`` chooses per-language thresholds from
labelled results and returns a new policy. ``--engine ray`` scores with Ray Data.
"""

from __future__ import annotations

from .calibration import CalibrationResult, calibrate, write_policy
from .fields import FieldSpec
from .report import write_report
from .runner import AuditConfig, AuditSummary, run_audit
from .writer import iter_output

__all__ = [
    "AuditConfig",
    "AuditSummary",
    "CalibrationResult",
    "FieldSpec",
    "calibrate",
    "iter_output",
    "run_audit",
    "write_policy",
    "write_report",
]
