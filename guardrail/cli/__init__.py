"""The ``guardrail`` command line: the composition root.

Core commands live in ``guardrail.cli.core``. Commands that need an adapter or an optional
dependency (``serve``, ``audit``, ``train``, ...) live in their own modules and are imported
only when that command runs, so ``guardrail check`` never imports FastAPI or torch.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

__all__ = ["cli", "main"]

# command name -> "module:attribute"; modules are imported only when the command is used.
LAZY_COMMANDS: dict[str, str] = {
    "check": "guardrail.cli.core:check",
    "policies": "guardrail.cli.core:policies",
    "taxonomy": "guardrail.cli.core:taxonomy",
    "schema": "guardrail.cli.core:schema",
    "validate": "guardrail.cli.core:validate",
    "classifiers": "guardrail.cli.core:classifiers",
    "train": "guardrail.cli.train:train",
    "serve": "guardrail.cli.serve:serve",
    "hash-key": "guardrail.cli.serve:hash_key",
    "audit": "guardrail.cli.audit:audit",
    "calibrate": "guardrail.cli.audit:calibrate",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module_name, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            command: click.Command = getattr(importlib.import_module(module_name), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="guardrail-sdk", prog_name="guardrail")
def cli() -> None:
    """Multilingual content-moderation guardrail for LLM applications."""


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="guardrail")
