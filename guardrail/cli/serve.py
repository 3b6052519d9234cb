"""``guardrail serve``: run the OpenAI-compatible proxy with uvicorn.

FastAPI and uvicorn are imported only when the command runs (the ``proxy`` extra:
``pip install ".[proxy]"`` in a checkout), so the rest of the CLI never needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from guardrail.cli.core import fail
from guardrail.errors import ConfigError, GuardrailError, install_hint


@click.command()
@click.option(
    "--upstream",
    "upstream_url",
    envvar="GUARDRAIL_UPSTREAM_URL",
    show_envvar=True,
    help="Upstream OpenAI-compatible base URL, including /v1 (default: https://api.openai.com/v1).",
)
@click.option(
    "--host",
    envvar="GUARDRAIL_HOST",
    show_envvar=True,
    help="Address to bind (default 127.0.0.1; use 0.0.0.0 to listen on all interfaces).",
)
@click.option(
    "--port", type=int, envvar="GUARDRAIL_PORT", show_envvar=True, help="Port (default 8000)."
)
@click.option(
    "--policy",
    "-p",
    envvar="GUARDRAIL_POLICY",
    show_envvar=True,
    help="Default policy: built-in name or YAML path (default: default).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="GUARDRAIL_CONFIG",
    show_envvar=True,
    help="YAML file of proxy settings (keys as in GUARDRAIL_* without the prefix).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    envvar="GUARDRAIL_LOG_LEVEL",
    show_envvar=True,
    help="Server log level (default info).",
)
def serve(
    upstream_url: str | None,
    host: str | None,
    port: int | None,
    policy: str | None,
    config_path: Path | None,
    log_level: str | None,
) -> None:
    """Run the OpenAI-compatible guardrail proxy.

    Every other setting (proxy keys, upstream key, timeouts, body limit, audit log, ...) comes
    from GUARDRAIL_* environment variables or the --config file; see the README.
    """
    try:
        import uvicorn
    except ImportError as e:
        fail(f"the proxy needs its extra: {install_hint('proxy')} ({e})")
        return
    settings, app = _build_app(
        config_path,
        upstream_url=upstream_url,
        host=host,
        port=port,
        policy=policy,
        log_level=log_level,
    )
    mode = "pass-through (callers' Authorization is forwarded)"
    if not settings.pass_through:
        mode = f"{len(settings.api_keys)} proxy key(s), {len(settings.keys)} named key(s)"
    click.echo(
        f"guardrail proxy on http://{settings.host}:{settings.port}/v1 -> "
        f"{settings.upstream_url} (policy {settings.policy}; auth: {mode})",
        err=True,
    )
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    except (OSError, ConfigError) as e:
        fail(f"cannot serve on {settings.host}:{settings.port}: {e}")


def _build_app(config_path: Path | None, **options: Any) -> tuple[Any, Any]:
    """Settings and the app, with the classifiers loaded; exits with a message on errors."""
    try:
        from guardrail.adapters.proxy import create_app, load_settings
    except ImportError as e:
        fail(f"the proxy needs its extra: {install_hint('proxy')} ({e})")
        raise AssertionError from e  # unreachable: fail() exits
    try:
        settings = load_settings(config_path, **options)
        app = create_app(settings)
        # Load the classifiers now, so a broken model fails here with a message rather than as
        # a server startup traceback.
        for guard in app.state.service.guards.values():
            _ = guard.classifier
    except GuardrailError as e:
        fail(str(e))
        raise AssertionError from e  # unreachable: fail() exits
    return settings, app


@click.command("hash-key")
def hash_key() -> None:
    """Print the SHA-256 of a proxy key read from standard input, for a `keys` entry.

        printf %s "$KEY" | guardrail hash-key

    Surrounding whitespace (a trailing newline) is stripped, as the proxy strips the key it
    is sent.
    """
    import hashlib
    import sys

    key = sys.stdin.read().strip()
    if not key:
        fail('no key on standard input: printf %s "$KEY" | guardrail hash-key')
    # The same digest as guardrail.adapters.proxy.settings.hash_key, without importing the proxy.
    click.echo(hashlib.sha256(key.encode("utf-8")).hexdigest())
