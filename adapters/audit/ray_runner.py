"""``--engine ray``: the same scoring on Ray Data, for inputs that outgrow one machine.

Ray's own readers read the input in parallel; ``map_batches`` sends batches to a pool of actors
that each build the policy's classifier once (one GPU each when the cluster has enough); the
driver receives the scored batches in input order and writes them with the same crash-safe
writer as the local engine, so the output is identical in format.

Differences from the local engine, by design of Ray's readers: a line that is not valid UTF-8 or
JSON fails the read instead of becoming an error row (use the local engine for dirty files), and
a resumed run scores the already-written rows again but does not write them twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError, install_hint
from guardrail.guard import Guard
from guardrail.policy import Policy

from .config import AuditConfig, AuditSummary
from .fields import FieldSpec, prepare
from .readers import Format, Record
from .scoring import score_batch
from .writer import CommitBuffer, ResultWriter, output_schema

__all__ = ["RayScorer", "run_ray"]


class RayScorer:
    """A Ray Data actor: one ``Guard`` (and so one classifier) per actor, reused for every batch."""

    def __init__(
        self, policy: dict[str, Any], fields: FieldSpec, redacted_text: bool = False
    ) -> None:
        self.guard = Guard(Policy.model_validate(policy))
        self.fields = fields
        self.redacted_text = redacted_text

    def __call__(self, batch: Any) -> Any:
        """Score one Arrow batch and return the output rows as an Arrow table."""
        import pyarrow as pa

        records = [Record(-1, values) for values in batch.to_pylist()]
        prepared = [prepare(r, self.fields) for r in records]
        rows = score_batch(self.guard, prepared, redacted_text=self.redacted_text)
        return pa.Table.from_pylist(rows, schema=output_schema())


def _dataset(path: Path, fmt: Format) -> Any:
    import ray.data

    if fmt == "jsonl":
        return ray.data.read_json(str(path), lines=True)
    if fmt == "csv":
        return ray.data.read_csv(str(path))
    if fmt == "parquet":
        return ray.data.read_parquet(str(path))
    try:
        import datasets
    except ImportError as e:
        raise ConfigError(
            "--engine ray reads saved Hugging Face datasets with `datasets`: " + install_hint("ray")
        ) from e
    return ray.data.from_huggingface(datasets.load_from_disk(str(path)))


def _init_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"--engine ray needs Ray: {install_hint('ray')}") from e
    if not ray.is_initialized():
        # Connects to RAY_ADDRESS when set, else starts a local instance.
        ray.init(include_dashboard=False, log_to_driver=False)
    return ray


def run_ray(config: AuditConfig, policy: Policy, writer: ResultWriter, fmt: Format) -> AuditSummary:
    """Score the input with Ray Data and write it through ``writer``."""
    ray = _init_ray()
    started = time.perf_counter()
    resumed_from = writer.rows_done
    errors = 0
    if not writer.complete:
        ctx = ray.data.DataContext.get_current()
        # Input order must survive the actor pool: row numbers and resume depend on it.
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = config.progress
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0) >= config.ray_workers
        _check_cpus(config.ray_workers, resources.get("CPU", 0), gpus)
        scored = _dataset(config.input, fmt).map_batches(
            RayScorer,
            fn_constructor_kwargs={
                "policy": policy.model_dump(mode="json"),
                "fields": config.fields,
                "redacted_text": config.redacted_text,
            },
            batch_size=config.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=config.ray_workers),
            num_gpus=1 if gpus else 0,
        )
        errors = _drain(scored, config, writer)
    writer.finish()
    return AuditSummary.of(writer, config, policy, resumed_from, errors, started, "ray")


def _check_cpus(workers: int, cpus: float, gpus: bool) -> None:
    # Each CPU actor holds a CPU for its lifetime; the readers need one too, or nothing moves.
    if not gpus and workers >= cpus:
        raise ConfigError(
            f"--workers {workers} would take every CPU of the Ray cluster ({cpus:g}) and leave "
            f"none for reading; use at most {max(1, int(cpus) - 1)}"
        )


def _drain(scored: Any, config: AuditConfig, writer: ResultWriter) -> int:
    position, errors = 0, 0
    skip = writer.rows_done
    pending = CommitBuffer(writer, rows=config.commit_rows, seconds=config.commit_s)
    for batch in scored.iter_batches(batch_size=config.batch_size, batch_format="pyarrow"):
        rows: list[dict[str, Any]] = []
        for r in batch.to_pylist():
            row, position = position, position + 1
            if row < skip:
                continue  # written by the run this one resumes
            r["row"] = row
            if config.fields.id_field is None or r["id"] == "-1":
                r["id"] = str(row)
            r["categories"] = dict(r["categories"] or [])
            errors += r["error"] is not None
            rows.append(r)
        pending.add(rows)
    pending.flush()
    return errors
