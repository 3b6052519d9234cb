"""Proxy settings: environment variables (prefix ``GUARDRAIL_``) and an optional YAML file.

Precedence, highest first: values passed in code (or on the ``guardrail serve`` command line),
environment variables, the YAML file (``GUARDRAIL_CONFIG`` or ``load_settings(path)``), defaults.
Unknown keys in the YAML file are errors, so a typo never silently takes a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
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

__all__ = ["ProxySettings", "load_settings"]


def _split_csv(value: Any) -> Any:
    """Accept ``a,b,c`` (the natural form for an env var) as well as a list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


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
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="The proxy's own API keys (comma-separated in the env var). Empty: "
        "pass-through mode, the caller's Authorization header is forwarded upstream.",
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

    @field_validator("upstream_url")
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
        if self.upstream_api_key is not None and not self.api_keys and not self.allow_anonymous:
            raise ValueError(
                "upstream_api_key is set but no proxy api_keys are: anyone who can reach the "
                "proxy would spend the upstream key. Set GUARDRAIL_API_KEYS, or "
                "GUARDRAIL_ALLOW_ANONYMOUS=true to accept that."
            )
        if any(not k.get_secret_value().strip() for k in self.api_keys):
            raise ValueError("api_keys must not contain empty keys")
        return self

    @property
    def pass_through(self) -> bool:
        """True when no proxy keys are configured: callers' Authorization goes upstream."""
        return not self.api_keys

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
