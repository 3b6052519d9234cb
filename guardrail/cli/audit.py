"""``guardrail audit`` and ``guardrail calibrate``: offline data sets (guardrail.adapters.audit).

The adapter is imported inside the commands, so other commands never pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from guardrail.cli.core import fail, policy_option
from guardrail.errors import GuardrailError
from guardrail.types import Role

if TYPE_CHECKING:
    from guardrail.policy import Policy

_PATH = click.Path(path_type=Path)


def _calibration_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--objective",
            type=click.Choice(["fpr", "recall", "f1"]),
            default=None,
            help="fpr: most recall within --target-fpr; recall: fewest false positives at "
            "--target-recall in every language; f1: best F1 (default: from the target given).",
        ),
        click.option(
            "--target-fpr", type=click.FloatRange(0, 1), default=None, help="FPR to meet."
        ),
        click.option(
            "--target-recall", type=click.FloatRange(0, 1), default=None, help="Recall to keep."
        ),
        click.option(
            "--force",
            is_flag=True,
            help="Write the calibrated policy even when a part is too small to trust or the "
            "held-out false-positive rate rises (the problems are still printed).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _objective(opts: dict[str, Any]) -> dict[str, Any]:
    """The calibration goal as ``calibrate()`` keywords (the objective and its target)."""
    fpr, recall, objective = opts["target_fpr"], opts["target_recall"], opts["objective"]
    if objective is None:
        given = [name for name, v in (("fpr", fpr), ("recall", recall)) if v is not None]
        if len(given) != 1:
            fail("choose one calibration goal: --target-fpr RATE, --target-recall RATE or "
                 "--objective f1")  # fmt: skip
        objective = given[0]
    if objective == "fpr" and fpr is None:
        fail("--objective fpr needs --target-fpr")
    if objective == "recall" and recall is None:
        fail("--objective recall needs --target-recall")
    if objective == "fpr":
        return {"objective": "fpr", "target_fpr": float(fpr)}
    if objective == "recall":
        return {"objective": "recall", "target_recall": float(recall)}
    return {"objective": "f1"}


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "-o", type=_PATH, required=True, help="Results file (.parquet or .jsonl).")
@click.option("--text-field", default="text", show_default=True, help="Column with the text.")
@click.option("--prompt-field", default=None, help="Column with the prompt a response answers.")
@click.option("--id-field", default=None, help="Id column (default: row numbers from 0).")
@click.option(
    "--role",
    type=click.Choice(["prompt", "response"]),
    default="prompt",
    show_default=True,
    help="Role of every row (unless --role-field).",
)
@click.option("--role-field", default=None, help="Column with prompt/response per row.")
@click.option("--label-field", default=None, help="Column with ground-truth labels.")
@click.option(
    "--label-map",
    multiple=True,
    help="VALUE=safe|unsafe|CATEGORY (repeatable or comma-separated) for non-boolean labels.",
)
@click.option("--language-field", default=None, help="Column with known language codes.")
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["jsonl", "csv", "parquet", "hf"]),
    default=None,
    help="Input format (default: from the suffix; a folder is a saved HF dataset).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--commit-rows",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Commit results at least every N rows (and every 5 s).",
)
@click.option("--report", type=_PATH, default=None, help="Write an HTML report here.")
@click.option("--no-report-text", is_flag=True, help="Leave texts out of the report.")
@click.option(
    "--group-by",
    default=None,
    metavar="COLUMN",
    help="Break the report down by this input column (e.g. source): rates and metrics per value.",
)
@click.option("--overwrite", is_flag=True, help="Start over: discard earlier output/progress.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--redacted-text",
    is_flag=True,
    help="Add a redacted_text column: each text with the personal data and secrets the "
    "policy finds replaced by placeholders (the policy needs an `entities` section).",
)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Scoring actors for --engine ray.",
)
@click.option(
    "--calibrate",
    "calibrate_out",
    type=_PATH,
    default=None,
    help="Also write a calibrated policy YAML (needs --label-field).",
)
@_calibration_options
def audit(input_path: Path, out: Path, policy: str, **opts: Any) -> None:
    """Score every row of INPUT (JSONL, CSV, Parquet or a saved HF dataset) with a policy.

    Results are committed as the run goes; a run that stops (even with kill -9) resumes when
    started again with the same arguments. Example:

        guardrail audit data.jsonl --text-field text --out results.parquet --report report.html
    """
    from guardrail.adapters.audit import AuditConfig, run_audit
    from guardrail.adapters.audit.fields import FieldSpec, parse_label_map
    from guardrail.adapters.audit.runner import resolve_policy

    if opts["calibrate_out"] and not opts["label_field"]:
        fail("--calibrate needs --label-field")
    if opts["group_by"] and not opts["report"]:
        fail("--group-by needs --report (it breaks the report down)")
    if opts["calibrate_out"]:
        _objective(opts)  # fail before the long run, not after it
    try:
        # Loaded once: the run, the report and the calibration all use this same policy.
        resolved = resolve_policy(policy)
        if opts["redacted_text"] and not resolved.entities.active:
            fail(
                f"--redacted-text: policy {resolved.name!r} looks for no personal data or "
                "secrets; use one with an `entities` section (e.g. redact-example)"
            )
        fields = FieldSpec(
            text_field=opts["text_field"],
            prompt_field=opts["prompt_field"],
            id_field=opts["id_field"],
            role=Role(opts["role"]),
            role_field=opts["role_field"],
            label_field=opts["label_field"],
            label_map=parse_label_map(list(opts["label_map"])),
            language_field=opts["language_field"],
        )
        config = AuditConfig(
            input=input_path,
            out=out,
            fields=fields,
            policy=resolved,
            input_format=opts["input_format"],
            batch_size=opts["batch_size"],
            commit_rows=opts["commit_rows"],
            overwrite=opts["overwrite"],
            progress=not opts["no_progress"],
            engine=opts["engine"],
            ray_workers=opts["workers"],
            redacted_text=opts["redacted_text"],
        )
        summary = run_audit(config)
        click.echo(
            f"{summary.rows:,} rows -> {summary.out} ({summary.rows_this_run:,} this run at "
            f"{summary.rows_per_s:,.1f} rows/s, {summary.errors:,} of them not scored"
            + (f"; resumed after {summary.resumed_from:,}" if summary.resumed_from else "")
            + ")"
        )
        if opts["report"]:
            _report(
                config,
                summary.as_dict(),
                opts["report"],
                not opts["no_report_text"],
                opts["group_by"],
            )
        if opts["calibrate_out"]:
            target = opts["calibrate_out"]
            _print_calibration(_calibrate(out, resolved, target, opts))
            click.echo(f"calibrated policy -> {target}")
    except GuardrailError as e:
        fail(str(e))


audit.params.append(policy_option())


def _report(
    config: Any, summary: dict[str, Any], path: Path, include_text: bool, group_by: str | None
) -> None:
    from guardrail.adapters.audit.readers import detect_format
    from guardrail.adapters.audit.report import write_report
    from guardrail.adapters.audit.runner import resolve_policy

    policy = resolve_policy(config.policy)
    meta = {
        "input": str(config.input),
        "policy": f"{policy.name} ({policy.content_hash})",
        "classifier": policy.classifier.name,
        **{k: v for k, v in summary.items() if k not in ("policy", "classifier")},
    }
    write_report(
        path,
        results=config.out,
        categories=list(policy.resolved_taxonomy.ids),
        meta=meta,
        input_path=config.input,
        input_format=detect_format(config.input, config.input_format),
        fields=config.fields,
        include_text=include_text,
        policy=policy,
        group_by=group_by,
    )
    click.echo(f"report -> {path}")


def _calibrate(
    results: Path, policy: str | Policy, out: Path, opts: dict[str, Any], **options: Any
) -> dict[str, Any]:
    from guardrail.adapters.audit.calibration import calibrate as run_calibration
    from guardrail.adapters.audit.calibration import write_policy
    from guardrail.adapters.audit.runner import resolve_policy

    result = run_calibration(results, resolve_policy(policy), **_objective(opts), **options)
    summary: dict[str, Any] = result.as_dict()
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in result.problems:
        click.echo(f"{'warning' if opts['force'] else 'error'}: {problem}", err=True)
    if result.problems and not opts["force"]:
        _print_calibration(summary, err=True)
        fail(
            f"not writing {out}: the calibration is not trustworthy ({len(result.problems)} "
            "problem(s) above); label more rows, or pass --force to write it anyway"
        )
    write_policy(result.policy, out)
    return summary


def _print_calibration(summary: dict[str, Any], *, err: bool = False) -> None:
    click.echo(
        f"calibrated on {summary['calibration_rows']:,} rows; held out {summary['holdout_rows']:,}",
        err=err,
    )
    for key, t in summary["thresholds"].items():
        click.echo(f"  {key:32} flag_at={t:.3f}", err=err)
    click.echo(f"  {'held-out':10} {'precision':>9} {'recall':>7} {'F1':>6} {'FPR':>6}", err=err)
    for when in ("before", "after"):
        m = summary[when]["overall"]
        click.echo(f"  {when:10} " + " ".join(_fmt(m[k], w) for k, w in _COLS), err=err)


_COLS = (("precision", 9), ("recall", 7), ("f1", 6), ("fpr", 6))


def _fmt(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


@click.command()
@click.argument("results", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=_PATH, required=True, help="Where to write the policy YAML.")
@_calibration_options
@click.option(
    "--holdout",
    type=click.FloatRange(0.01, 0.99),
    default=0.3,
    show_default=True,
    help="Fraction of rows (by id hash) kept out to report on.",
)
@click.option(
    "--min-rows",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Fewest rows per class for a language or category to get its own threshold.",
)
@click.option("--no-categories", is_flag=True, help="Do not calibrate category thresholds.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def calibrate(results: Path, out: Path, policy: str, **opts: Any) -> None:
    """Choose per-language thresholds from a labelled audit output (RESULTS) and write a policy.

    RESULTS comes from `guardrail audit ... --label-field LABEL` run with the same --policy.
    """
    try:
        summary = _calibrate(
            results,
            policy,
            out,
            opts,
            holdout=opts["holdout"],
            min_rows=opts["min_rows"],
            per_category=not opts["no_categories"],
        )
    except GuardrailError as e:
        fail(str(e))
        return
    if opts["as_json"]:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_calibration(summary)
    click.echo(f"calibrated policy -> {out}", err=opts["as_json"])


calibrate.params.append(policy_option())
