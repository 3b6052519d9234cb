"""Core CLI commands: check, policies, taxonomy, schema, validate, classifiers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from guardrail.errors import GuardrailError
from guardrail.types import Action, Verdict

if TYPE_CHECKING:
    from guardrail.policy import Policy

# Exit codes of `guardrail check --exit-code`; 1 and 2 stay with errors and usage problems.
EXIT_CODES = {Action.ALLOW: 0, Action.FLAG: 10, Action.REDACT: 15, Action.BLOCK: 20}
_COLOURS = {
    Action.ALLOW: "green",
    Action.FLAG: "yellow",
    Action.REDACT: "cyan",
    Action.BLOCK: "red",
}


def fail(message: str, code: int = 2) -> None:
    """Print an error without a traceback and exit."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def read_text_arg(text: str) -> str:
    """TEXT, or standard input when TEXT is ``-`` (must be valid UTF-8)."""
    if text != "-":
        return text
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"standard input is not valid UTF-8 (byte {e.start}: {e.reason})")
        raise AssertionError from e  # unreachable: fail() exits


def policy_option() -> click.Option:
    """The shared ``--policy NAME|PATH`` option."""
    return click.Option(
        ["--policy", "-p"],
        default="default",
        show_default=True,
        envvar="GUARDRAIL_POLICY",
        help="Built-in policy name or path to a policy YAML file.",
    )


def _print_verdict(verdict: Verdict) -> None:
    colour = _COLOURS[verdict.action]
    click.secho(verdict.action.value.upper(), fg=colour, bold=True, nl=False)
    click.echo(
        f"  unsafe={verdict.scores.unsafe:.3f}  language={verdict.language or '?'}"
        f"  policy={verdict.policy}  classifier={verdict.classifier}"
    )
    for fired in verdict.categories:
        click.echo(
            f"  {fired.action.value:5}  {fired.category:28} "
            f"score={fired.score:.3f} >= {fired.threshold:.2f}"
        )
    top = sorted(verdict.scores.categories.items(), key=lambda kv: -kv[1])[:5]
    if top and not verdict.categories:
        click.echo("  top categories: " + ", ".join(f"{k}={v:.3f}" for k, v in top))
    for entity in verdict.entities:
        where = f"{entity.start}-{entity.end}"
        placeholder = f"  -> {entity.placeholder}" if entity.placeholder else ""
        click.echo(
            f"  {entity.action.value:6} {entity.type:16} at {where:11} "
            f"score={entity.score:.2f} ({entity.detector}){placeholder}"
        )
    if verdict.decided_by:
        click.echo(f"  decided by: {', '.join(verdict.decided_by)}")
    for note in verdict.notes:
        click.echo(f"  note: {note}")


@click.command()
@click.argument("text")
@click.option(
    "--role",
    type=click.Choice(["prompt", "response"]),
    default="prompt",
    show_default=True,
    help="Check user input or model output.",
)
@click.option(
    "--prompt",
    "prompt_text",
    default=None,
    help="For --role response: the prompt the response answers.",
)
@click.option("--language", default=None, help="Known language code (skips detection).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 10 on flag, 15 on redact and 20 on block (0 on allow).",
)
@click.option(
    "--redact",
    "show_redacted",
    is_flag=True,
    help="Also print the text as it would be sent on, with the personal data and secrets the "
    "policy redacts replaced by placeholders (the policy needs an `entities` section).",
)
@click.pass_context
def check(
    ctx: click.Context,
    text: str,
    role: str,
    prompt_text: str | None,
    language: str | None,
    as_json: bool,
    exit_code: bool,
    show_redacted: bool,
    policy: str,
) -> None:
    """Check TEXT (or standard input with -) and print the verdict."""
    from guardrail.guard import Guard
    from guardrail.policy import load_policy

    content = read_text_arg(text)
    try:
        guard = Guard.from_policy(_one_shot(load_policy(policy)))
        if role == "prompt":
            verdict = guard.check_prompt(content, language=language)
        else:
            verdict = guard.check_response(content, prompt=prompt_text, language=language)
        redacted = guard.redact(content, role=role) if show_redacted else None
    except GuardrailError as e:
        fail(str(e))
        return
    if redacted is not None:
        # The placeholders handed out, on the verdict's entities (never the values).
        verdict = verdict.with_updates(entities=redacted.entities)
    if as_json and redacted is not None:
        data = verdict.model_dump(mode="json")
        data["redacted_text"] = redacted.text
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif as_json:
        click.echo(verdict.model_dump_json(indent=2))
    else:
        _print_verdict(verdict)
        if redacted is not None:
            click.echo("redacted:")
            click.echo(redacted.text)
    if exit_code:
        ctx.exit(EXIT_CODES[verdict.action])


check.params.append(policy_option())


def _one_shot(policy: Policy) -> Policy:
    """The policy for checking one text: the embedded encoder on its numpy backend.

    One text can't pay back torch's ~1.4 s import, so unless the policy or
    ``GUARDRAIL_ENCODER_BACKEND`` chooses a backend, ``check`` uses numpy.
    """
    import os

    from guardrail.classifiers.embedded._encoder import BACKEND_ENV

    spec = policy.classifier
    if spec.name != "embedded" or "encoder_backend" in spec.options or os.environ.get(BACKEND_ENV):
        return policy
    options = {**spec.options, "encoder_backend": "numpy"}
    return policy.model_copy(update={"classifier": spec.model_copy(update={"options": options})})


@click.command()
def policies() -> None:
    """List the built-in policies."""
    from guardrail.policy import list_policies, load_policy

    for name in list_policies():
        try:
            policy = load_policy(name, validate_classifier=False)
            click.echo(f"{name:14} {policy.classifier.name:14} {policy.description}")
        except GuardrailError as e:
            click.echo(f"{name:14} (invalid: {e})")


@click.command()
@click.argument("name", default="mlcommons")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def taxonomy(name: str, as_json: bool) -> None:
    """Show a taxonomy (default: mlcommons) and the built-in mappings."""
    from guardrail.taxonomy import list_mappings, list_taxonomies, load_taxonomy

    try:
        tax = load_taxonomy(name)
    except GuardrailError as e:
        fail(str(e))
        return
    if as_json:
        click.echo(tax.model_dump_json(indent=2))
        return
    click.echo(f"{tax.name}: {tax.description}")
    for cat in tax.categories:
        roles = "" if len(cat.roles) == 2 else f" [{', '.join(r.value for r in cat.roles)} only]"
        click.echo(f"  {cat.code:5} {cat.id:28} {cat.name}{roles}")
    click.echo(f"\nbuilt-in taxonomies: {', '.join(list_taxonomies())}")
    click.echo("mappings: " + ", ".join(f"{s} -> {t}" for s, t in list_mappings()))


@click.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to a file instead of standard output.",
)
def schema(out: Path | None) -> None:
    """Print the JSON Schema of policy files."""
    from guardrail.policy import Policy

    text = json.dumps(Policy.model_json_schema(), indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def validate(files: tuple[Path, ...]) -> None:
    """Validate policy files; print every error with its path in the file."""
    from guardrail.policy import load_policy

    bad = 0
    for file in files:
        try:
            policy = load_policy(file)
        except GuardrailError as e:
            bad += 1
            click.secho(f"INVALID {e}", fg="red", err=True)
        else:
            click.secho(
                f"ok      {file} (policy {policy.name!r}, classifier {policy.classifier.name!r})",
                fg="green",
            )
    if bad:
        sys.exit(1)


@click.command()
def classifiers() -> None:
    """List the classifier backends a policy may name."""
    from guardrail.registry import known_classifiers

    for name in known_classifiers():
        click.echo(name)
