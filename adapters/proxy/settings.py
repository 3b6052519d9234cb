"""Proxy settings: environment variables (prefix ``GUARDRAIL_``) and an optional YAML file.

Precedence, highest first: values passed in code (or on the ``guardrail serve`` command line),
environment variables, the YAML file (``GUARDRAIL_CONFIG`` or ``load_settings(path)``), defaults.
Unknown keys in the YAML file are errors, so a typo never silently takes a default.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from guardrail._resources import format_validation_error
from guardrail.errors import ConfigError
from guardrail.policy import OnError

__all__ = ["ProxyKey", "ProxySettings", "hash_key", "load_settings"]


def _split_csv(value: Any) -> Any:
    """Accept ``a,b,c`` (the natural form for an env var) as well as a list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def hash_key(key: str) -> str:
    """The SHA-256 (hex) of a proxy key: what a ``keys`` entry stores instead of the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ProxyKey(BaseModel):
    """A proxy key bound to a name, a policy, the policies it may switch to, and models.

    Only the key's SHA-256 is stored (``guardrail hash-key`` prints it); the audit log and
    the metrics carry ``name``, never the key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9_.:@/-]+$",
        description="Who holds the key (a team, a service); shown in audit lines and metrics.",
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the key, 64 lower-case hex digits (`guardrail hash-key`).",
    )
    policy: str | None = Field(
        None,
        description="The key's policy: built-in name or YAML path (default: the proxy's policy).",
    )
    policies: list[str] = Field(
        default_factory=list,
        description="Other policies this key may pick with the policy header (default: none).",
    )
    models: list[str] | None = Field(
        None, description="Models this key may call (default: any); others get 403."
    )

    @field_validator("sha256", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class ProxySettings(BaseSettings):
    """Settings of the OpenAI-compatible proxy.

    Every field can be set with an environment variable named ``GUARDRAIL_`` + the field name
    in upper case (``GUARDRAIL_UPSTREAM_URL``, ``GUARDRAIL_API_KEYS=key1,key2``, ...).
    """

    model_config = SettingsConfigDict(
        env_prefix="GUARDRAIL_", extra="forbid", frozen=True, validate_default=True
    )

    upstream_url: str = Field(
        "https://api.openai.com/v1",
        description="Base URL of the upstream OpenAI-compatible API, including /v1.",
    )
    upstream_api_key: SecretStr | None = Field(
        None,
        description="Key sent upstream when proxy keys are configured. Never logged or returned.",
    )
    anthropic_upstream_url: str = Field(
        "https://api.anthropic.com/v1",
        description="Base URL of the Anthropic-compatible upstream for /v1/messages, incl. /v1.",
    )
    anthropic_upstream_api_key: SecretStr | None = Field(
        None,
        description="x-api-key sent to the Anthropic upstream when proxy keys are configured. "
        "Never logged or returned.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="The proxy's own API keys (comma-separated in the env var). Empty: "
        "pass-through mode, the caller's Authorization header is forwarded upstream.",
    )
    keys: list[ProxyKey] = Field(
        default_factory=list,
        description="Named proxy keys (stored hashed), each bound to a policy, the policies it "
        "may switch to and optionally the models it may call (see ProxyKey).",
    )
    allow_anonymous: bool = Field(
        False,
        description="Allow an upstream_api_key without proxy api_keys (anyone who can reach "
        "the proxy spends that key). Off by default.",
    )
    policy: str = Field("default", description="Default policy: built-in name or YAML path.")
    policies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other policies a caller may choose with the policy header (allow-list).",
    )
    policy_header: str = Field(
        "x-guardrail-policy", description="Request header that picks one of `policies`."
    )
    on_error: OnError | None = Field(
        None, description="Override the policy's on_error (block = fail closed, allow = open)."
    )
    classify_timeout_s: float | None = Field(
        10.0, gt=0, description="Classifier timeout; overrides the policy's timeout_s."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Upstream connect timeout.")
    upstream_timeout_s: float = Field(
        600.0, gt=0, description="Upstream read/write timeout (per read while streaming)."
    )
    max_connections: int = Field(200, gt=0, description="Upstream connection pool size.")
    max_body_bytes: int = Field(
        4 * 1024 * 1024, gt=0, description="Largest accepted request body; larger gets 413."
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Time allowed to receive a whole request body; a client still sending after "
        "it gets 408 (a half-sent body is not held open).",
    )
    max_inputs: int = Field(
        256,
        gt=0,
        description="Most texts in one /v1/moderations, /v1/embeddings or /v1/completions "
        "request (each is classified on its own); more gets 400.",
    )
    max_input_chars: int = Field(
        200_000,
        gt=0,
        description="Most characters in all texts of one such request together; more gets 413.",
    )
    public_docs: bool = Field(
        False,
        description="Serve /docs, /redoc and /openapi.json without a proxy key (they need one "
        "when api_keys are set).",
    )
    public_metrics: bool = Field(
        False,
        description="Serve /metrics without a proxy key (it needs one when api_keys are set).",
    )
    stream_check_every: int = Field(
        200, gt=0, description="While streaming, check the text at least every N characters."
    )
    allow_media: bool = Field(
        False,
        description="Forward non-text content parts (images, audio, files) unmoderated. Off: "
        "such requests are refused with 400, since the classifier only reads text.",
    )
    audit_log: str | None = Field(
        None, description="Audit log: a file path, '-' for standard error, or unset for none."
    )
    audit_log_text: bool = Field(
        False, description="Include the raw text in audit lines (otherwise only its hash)."
    )
    host: str = Field("127.0.0.1", description="Address `guardrail serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `guardrail serve` listens on.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="Server log level."
    )

    @field_validator("api_keys", "policies", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("upstream_url", "anthropic_upstream_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @field_validator("policy_header")
    @classmethod
    def _header(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _key_needs_auth(self) -> ProxySettings:
        upstream_keys = [
            name
            for name in ("upstream_api_key", "anthropic_upstream_api_key")
            if getattr(self, name) is not None
        ]
        if upstream_keys and self.pass_through and not self.allow_anonymous:
            raise ValueError(
                f"{upstream_keys[0]} is set but no proxy keys are (api_keys or keys): anyone "
                "who can reach the proxy would spend the upstream key. Set GUARDRAIL_API_KEYS "
                "or keys, or GUARDRAIL_ALLOW_ANONYMOUS=true to accept that."
            )
        if any(not k.get_secret_value().strip() for k in self.api_keys):
            raise ValueError("api_keys must not contain empty keys")
        self._check_keys()
        return self

    def _check_keys(self) -> None:
        names = [k.name for k in self.keys]
        hashes = [k.sha256 for k in self.keys]
        hashes += [hash_key(k.get_secret_value()) for k in self.api_keys]
        if len(set(names)) != len(names):
            raise ValueError(f"keys: names must be unique, got {sorted(names)}")
        if len(set(hashes)) != len(hashes):
            raise ValueError("keys: the same key is configured twice (keys / api_keys)")
        for key in self.keys:
            if key.policy is not None and key.policy in key.policies:
                raise ValueError(f"keys.{key.name}: policies repeats the key's own policy")

    @property
    def pass_through(self) -> bool:
        """True when no proxy keys are configured: callers' Authorization goes upstream."""
        return not self.api_keys and not self.keys

    def all_policies(self) -> list[str]:
        """Every policy the proxy loads: the default, the allow-list and the keys' policies."""
        names = [self.policy, *self.policies]
        for key in self.keys:
            names += [key.policy or self.policy, *key.policies]
        return list(dict.fromkeys(names))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Code/CLI values, then environment, then the YAML file (if any)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("yaml_file"):
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)


def load_settings(path: str | Path | None = None, **overrides: Any) -> ProxySettings:
    """Build settings from a YAML file (optional), the environment and explicit overrides.

    Args:
        path: a YAML file of settings (keys are the field names); None reads none.
        overrides: values that beat both (None values are ignored, so CLI options can pass
            through unset).

    Raises:
        ConfigError: the file is missing or invalid, or a value is wrong; the message names
            the field.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    cls: type[ProxySettings] = ProxySettings
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"{file}: no such settings file")
        config = SettingsConfigDict(**{**ProxySettings.model_config, "yaml_file": file})
        cls = type("ProxySettings", (ProxySettings,), {"model_config": config})
    where = f"{path}: " if path is not None else ""
    try:
        return cls(**given)
    except ValidationError as e:
        raise ConfigError(f"{where}invalid proxy settings:\n{format_validation_error(e)}") from e
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"{where}invalid proxy settings: {e}") from e
