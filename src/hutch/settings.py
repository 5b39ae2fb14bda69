"""Hutch's one settings object, read from ``HUTCH_*`` environment variables and ``.env``."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
from enum import StrEnum
from functools import cached_property
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hutch.db.embedded import ROOT_DATA_DIR, is_under_home, running_as_root

SECRETS_FILE = "secrets.json"
# An HUTCH_EGRESS_ALLOW entry that is not a CIDR: a name (``*.`` for its subdomains) or an address.
EGRESS_HOST = re.compile(r"^(\*\.)?[A-Za-z0-9_.:\[\]-]+$")


# Words of the placeholders people copy from examples ("change-me", "my-secret-key", "default"...).
PLACEHOLDER_WORDS = ("change", "secret", "example", "default", "password", "placeholder", "replace")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


class WebSearchProvider(StrEnum):
    SEARXNG = "searxng"
    BRAVE = "brave"
    TAVILY = "tavily"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it in one sentence."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUTCH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    secret_key: SecretStr | None = None
    encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_json: bool | None = None

    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    worker_concurrency: int = Field(default=4, ge=1, le=256)
    # Chat turns a worker runs at once. A turn waiting on its model holds no database connection, only
    # memory (tens of kilobytes), so one process keeps hundreds in flight with a small pool.
    turn_concurrency: int = Field(default=500, ge=1, le=10_000)
    # Job worker processes `hutch serve` starts beside its API; 0: one per core it may use but one (left to
    # the API and the database). A worker is one Python process, so one core: turns are bound by its CPU.
    worker_processes: int = Field(default=0, ge=0, le=64)
    # How much lower than the API's the workers `hutch serve` starts run (nice): on a machine both share, a
    # webhook is acknowledged before more turn work is done; 0: the same priority.
    worker_niceness: int = Field(default=5, ge=0, le=19)
    # A worker whose heartbeat is older than this is dead; its running jobs are retried.
    worker_stalled_timeout: float = Field(default=30.0, gt=0)
    worker_heartbeat_interval: float = Field(default=5.0, gt=0)
    job_retention_days: int = Field(default=7, ge=1)

    access_token_minutes: int = Field(default=15, ge=1, le=1440)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    email_verification_hours: int = Field(default=48, ge=1, le=24 * 30)
    password_reset_minutes: int = Field(default=60, ge=5, le=24 * 60)
    invitation_days: int = Field(default=7, ge=1, le=90)
    # Single sign-on (docs/sso.md): Google, and one OpenID Connect provider found from its issuer.
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_name: str = "single sign-on"  # the button reads "Sign in with <name>"
    # Used for keys created without their own limit, until plans set one.
    api_key_rate_limit_per_minute: int = Field(default=120, ge=1)
    # Languages (docs/languages.md): the one spoken when neither a person nor their browser chose one Hutch
    # has, and a directory of the operator's catalogues (<dir>/<lang>/LC_MESSAGES/messages.po).
    default_language: str = "en"
    locales_dir: Path | None = None

    # Outside services (used by later domains; kept here so one object describes the deployment).
    stripe_api_base: str | None = None
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    # The operator's bot, through which users reach their personal agents (deep-link linking).
    telegram_bot_token: SecretStr | None = None
    # The bot factory: creator accounts below this many active ones raise an admin alert; a BotFather
    # answer waited this long counts as no answer; verification codes of new bots last this long.
    botfactory_min_active_accounts: int = Field(default=2, ge=0)
    botfactory_step_timeout: float = Field(default=30.0, gt=0)
    botfactory_verification_hours: int = Field(default=48, ge=1, le=24 * 30)
    twilio_api_base: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    # Content SID of an approved template with one variable, for messages outside WhatsApp's 24 h window.
    twilio_whatsapp_template_sid: str | None = None
    # Where admin alerts go besides the platform admins' email: a Telegram chat (through the platform bot)
    # and a webhook, signed with HMAC-SHA256 of the secret (header X-Hutch-Signature: t=...,v1=...).
    admin_telegram_chat_id: str | None = None
    admin_webhook_url: str | None = None
    admin_webhook_secret: SecretStr | None = None
    # Web chat widget: messages per minute one visitor, one visitor's address and one agent may send.
    widget_visitor_per_minute: int = Field(default=10, ge=1)
    widget_ip_per_minute: int = Field(default=30, ge=1)
    widget_agent_per_minute: int = Field(default=120, ge=1)
    runtime_local_capacity: int = Field(default=20, ge=0)  # dedicated runtimes this machine runs (process)
    runtime_ready_timeout: float = Field(default=300.0, gt=0)  # seconds a runtime may take to become ready
    runtime_local_hourly_cost_cents: int = Field(default=0, ge=0)  # what a local runtime hour costs (margins)
    # What one outgoing message costs the operator, for margins (Twilio's WhatsApp price, for instance).
    whatsapp_message_cost_micro_usd: int = Field(default=0, ge=0)
    telegram_message_cost_micro_usd: int = Field(default=0, ge=0)
    runtime_image: str = "hutch-runtime:latest"  # the Docker image of runtimes (deploy/runtime.Dockerfile)
    runtime_pip_spec: str = "hutch"  # what machines install to run a runtime (a version, a wheel URL)
    runtime_ec2_ami: str | None = None  # EC2 hosts: an Ubuntu image
    runtime_ec2_instance_type: str = "t3.small"  # for plans without a memory limit
    runtime_ec2_disk_gb: int = Field(default=20, ge=8)
    runtime_ec2_key_name: str | None = None  # the key pair the SSH key below belongs to
    runtime_ec2_subnet_id: str | None = None
    runtime_ec2_security_group_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    runtime_ssh_user: str = "ubuntu"
    runtime_ssh_key_file: Path | None = None
    aws_endpoint_url: str | None = None  # another EC2 API (LocalStack, moto); credentials: AWS_* as usual
    runtime_cancel_grace_hours: float = Field(default=72.0, ge=0)  # a canceled org's runtimes wait this long
    livekit_url: str | None = None  # what clients connect to (wss://...)
    livekit_api_url: str | None = None  # the server API, when not livekit_url with http(s)
    voice_token_minutes: int = Field(default=60, ge=1, le=24 * 60)  # how long a voice token lets one join
    voice_warning_seconds: int = Field(default=120, ge=0)  # warn a session this long before time runs out
    livekit_api_key: str | None = None
    livekit_api_secret: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    google_api_key: SecretStr | None = None
    google_base_url: str | None = None
    moonshot_api_key: SecretStr | None = None
    moonshot_base_url: str | None = None
    deepseek_api_key: SecretStr | None = None
    deepseek_base_url: str | None = None
    ollama_base_url: str | None = None
    openai_compatible_api_key: SecretStr | None = None
    openai_compatible_base_url: str | None = None

    # The conversation engine.
    embedding_provider: Literal["auto", "openai", "local", "none"] = "auto"
    embedding_model: str = "text-embedding-3-small"  # for the openai provider
    knowledge_max_upload_mb: int = Field(default=20, ge=1, le=1024)
    knowledge_prompt_tokens: int = Field(default=1500, ge=0, le=50_000)  # retrieved passages per prompt
    plans_file: Path | None = None  # the operator's plans and packages (replaces the built-in file)
    model_catalog_file: Path | None = None  # the operator's additions to the model catalog
    llm_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    llm_max_retries: int = Field(default=2, ge=0, le=10)  # per model, with backoff, before the fallback
    history_messages: int = Field(default=20, ge=2, le=200)
    history_token_budget: int = Field(default=8000, ge=500)
    memories_in_prompt: int = Field(default=30, ge=0, le=500)
    # web_fetch refuses private, loopback and link-local addresses unless the operator allows them; so do
    # the base URLs customers give with their own provider keys.
    web_fetch_allow_private: bool = False
    # Hosts (``wiki.internal``, ``*.corp.example``) or CIDRs (``10.1.0.0/16``) that tools and downloads
    # may reach although private (hutch.core.egress).
    egress_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Connected tools (MCP servers, webhook tools; docs/tools.md): how long one call may take, and how much
    # of its answer the model is given (longer answers are cut, with a note saying so).
    tool_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    tool_result_max_chars: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    provider_urls_allow_private: bool = False
    # Files people send in chat (images, voice notes, documents; see docs/media.md). The operator's cap holds
    # whatever the plan allows; voice notes are transcribed through an OpenAI-compatible
    # ``/audio/transcriptions`` endpoint, and answered "not set up" while it is not configured.
    attachment_max_mb: int = Field(default=20, ge=1, le=1024)
    attachment_prompt_tokens: int = Field(default=4000, ge=0, le=100_000)  # a sent file's text per turn
    transcription_base_url: str | None = None
    transcription_api_key: SecretStr | None = None
    transcription_model: str = "whisper-1"
    transcription_timeout_seconds: float = Field(default=60.0, gt=0, le=600)
    # The web_search tool's provider. The URL is the SearXNG instance (required for it), or replaces Brave's
    # or Tavily's API base (https://api.search.brave.com, https://api.tavily.com); the key is theirs.
    web_search_provider: WebSearchProvider | None = None
    web_search_url: str | None = None
    web_search_api_key: SecretStr | None = None
    web_search_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # What one search costs (micro-USD), metered on the org's usage; None: the provider's list price
    # (Brave 5000, Tavily 8000, SearXNG 0). Calls to MCP servers and webhook tools are counted at no cost.
    web_search_cost_micro_usd: int | None = Field(default=None, ge=0)
    # The browser agents drive (docs/browser.md): Debian's Chromium, one process per Hutch process, at most
    # ``browser_pool_size`` contexts open in it, each closed after ``browser_idle_seconds`` unused.
    browser_executable: Path = Path("/usr/bin/chromium")
    browser_pool_size: int = Field(default=8, ge=1, le=500)
    browser_idle_seconds: float = Field(default=300.0, gt=0, le=86_400)
    browser_action_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    # Where browser screenshots are kept: files under the data directory, or an S3-compatible bucket.
    screenshots_bucket: str | None = None
    screenshots_s3_endpoint_url: str | None = None
    screenshots_s3_region: str = "us-east-1"
    screenshots_s3_access_key_id: SecretStr | None = None
    screenshots_s3_secret_access_key: SecretStr | None = None
    # What a minute of transcribed voice note costs (micro-USD); OpenAI's whisper-1 lists $0.006.
    transcription_cost_micro_usd_per_minute: int = Field(default=6000, ge=0)
    smtp_url: SecretStr | None = None
    email_from: str | None = None  # e.g. "Acme AI <hello@acme.example>"
    # The operator's privacy policy and terms of service, shown at /privacy and /terms: Markdown, or plain
    # text when the file ends in .txt. Unset: a notice that the operator has not published one yet.
    privacy_file: Path | None = None
    terms_file: Path | None = None
    # The operator's brand (docs/brand.md): checked and built into one Brand at start-up by hutch.core.brand;
    # HUTCH_BRAND_FILE (TOML) holds the same keys and more, and overrides these.
    brand_name: str | None = None
    brand_logo_url: str | None = None
    brand_primary_color: str | None = None
    support_email: str | None = None
    brand_file: Path | None = None
    powered_by: bool = True
    redis_url: SecretStr | None = None

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        # Dashboard CORS sends credentials: a wildcard (or "null", what sandboxed frames send) would let any
        # site read a signed-in person's answers, as the origin is echoed back.
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s*?#@]+", origin):
                raise ValueError(
                    f"HUTCH_ALLOWED_ORIGINS lists exact origins (https://app.example), not {origin!r}"
                )
        return value

    @field_validator("runtime_ec2_security_group_ids", mode="before")
    @classmethod
    def _split_groups(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _split_egress_allow(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("egress_allow")
    @classmethod
    def _check_egress_allow(cls, value: list[str]) -> list[str]:
        for entry in value:
            if "/" in entry:
                try:
                    ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a host name or a CIDR such as 10.0.0.0/8") from None
            elif not EGRESS_HOST.match(entry):
                raise ValueError(f"{entry!r} is not a host name, an address or a CIDR") from None
        return value

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _check_fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            try:
                Fernet(key.get_secret_value())
            except ValueError:
                raise ValueError(
                    "each key must be a url-safe base64 Fernet key of 32 bytes "
                    "(make one with: hutch keys generate)"
                ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value()
        scheme = raw.split("://", 1)[0]
        if "://" not in raw or scheme.split("+", 1)[0] not in {"postgresql", "postgres"}:
            raise ValueError("must be a PostgreSQL URL such as postgresql://user:password@host:5432/hutch")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if urlsplit(value.get_secret_value()).scheme not in ("smtp", "smtps"):
            raise ValueError("must look like smtp://user:password@host:587 or smtps://host:465")
        return value

    @field_validator("web_search_provider", "web_search_url", "web_search_api_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("web_search_url")
    @classmethod
    def _check_web_search_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError("must be an http(s) URL such as http://searxng:8080")
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return upper

    @model_validator(mode="after")
    def _production_requirements(self) -> Settings:
        if self.env is Environment.PRODUCTION:
            missing = [
                name
                for name, value in (
                    ("HUTCH_DATABASE_URL", self.database_url),
                    ("HUTCH_SECRET_KEY", self.secret_key),
                    ("HUTCH_ENCRYPTION_KEYS", self.encryption_keys or None),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"production mode requires {', '.join(missing)}")
            self._refuse_weak_secrets()
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("HUTCH_SECRET_KEY must be at least 32 characters")
        self._check_web_search()
        return self

    def _refuse_weak_secrets(self) -> None:
        """Production refuses a secret someone could guess: a placeholder copied from an example, a repeated
        character, a Fernet key of repeated bytes."""
        assert self.secret_key is not None
        secret = self.secret_key.get_secret_value()
        if any(word in secret.lower() for word in PLACEHOLDER_WORDS) or len(set(secret)) < 16:
            raise ValueError(
                "HUTCH_SECRET_KEY looks like a placeholder or repeats itself; generate one with "
                '`python -c "import secrets; print(secrets.token_urlsafe(48))"`'
            )
        for key in self.encryption_keys:
            if len(set(base64.urlsafe_b64decode(key.get_secret_value()))) < 16:
                raise ValueError(
                    "HUTCH_ENCRYPTION_KEYS holds a key of repeated bytes; make one with `hutch keys generate`"
                )

    def _check_web_search(self) -> None:
        provider = self.web_search_provider
        if provider is None:
            if self.web_search_url is not None or self.web_search_api_key is not None:
                raise ValueError(
                    "HUTCH_WEB_SEARCH_URL or HUTCH_WEB_SEARCH_API_KEY is set without "
                    "HUTCH_WEB_SEARCH_PROVIDER (searxng, brave or tavily)"
                )
        elif provider is WebSearchProvider.SEARXNG and self.web_search_url is None:
            raise ValueError(
                "HUTCH_WEB_SEARCH_PROVIDER=searxng requires HUTCH_WEB_SEARCH_URL (the instance's address)"
            )
        elif provider is not WebSearchProvider.SEARXNG and self.web_search_api_key is None:
            raise ValueError(f"HUTCH_WEB_SEARCH_PROVIDER={provider.value} requires HUTCH_WEB_SEARCH_API_KEY")

    @property
    def base_url(self) -> str:
        """Where people and outside services reach this deployment (links in emails, webhooks)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104 - a comparison
        return f"http://{host}:{self.port}"

    @property
    def sender(self) -> str:
        if self.email_from:
            return self.email_from
        domain = urlsplit(self.base_url).hostname or "localhost"
        return f"Hutch <noreply@{domain}>"

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def json_logs(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @cached_property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        # As root, the default ./var may sit in a home folder, whose parents the embedded PostgreSQL would
        # open to everyone; use the system location instead. An explicit HUTCH_DATA_DIR is respected
        # (and refused at start if it is inside a home folder).
        if "data_dir" not in self.model_fields_set and running_as_root() and is_under_home(path):
            return ROOT_DATA_DIR
        return path

    def require_secret_key(self) -> str:
        if self.secret_key is None:
            raise SettingsError("HUTCH_SECRET_KEY is not set")
        return self.secret_key.get_secret_value()


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings; a bad value raises :class:`SettingsError` naming the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = [str(part) for part in first["loc"] if part not in ("__root__",)]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not location:
        return f"Invalid settings: {message}."
    name = "HUTCH_" + location[0].upper()
    return f"Invalid setting {name}: {message}."


def ensure_generated_secrets(settings: Settings) -> Settings:
    """Fill in the secret key and encryption keys for a local deployment.

    They are generated once into ``<data dir>/secrets.json`` (mode 0600) so a second start reuses them;
    production deployments must provide both, which the validator enforces.
    """
    if settings.secret_key is not None and settings.encryption_keys:
        return settings
    path = settings.resolved_data_dir / SECRETS_FILE
    stored: dict[str, Any] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SettingsError(f"Cannot read {path}: {exc}. Fix or delete the file.") from None
    changed = False
    if "secret_key" not in stored:
        stored["secret_key"] = secrets.token_urlsafe(48)
        changed = True
    if not stored.get("encryption_keys"):
        stored["encryption_keys"] = [Fernet.generate_key().decode()]
        changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
    update: dict[str, Any] = {}
    if settings.secret_key is None:
        update["secret_key"] = SecretStr(stored["secret_key"])
    if not settings.encryption_keys:
        update["encryption_keys"] = [SecretStr(key) for key in stored["encryption_keys"]]
    return settings.model_copy(update=update)


def export_to_environment(settings: Settings, database_url: str) -> None:
    """Pass the resolved database and secrets to child processes (uvicorn --reload, worker subprocesses)."""
    os.environ["HUTCH_DATABASE_URL"] = database_url
    if settings.secret_key is not None:
        os.environ["HUTCH_SECRET_KEY"] = settings.secret_key.get_secret_value()
    if settings.encryption_keys:
        os.environ["HUTCH_ENCRYPTION_KEYS"] = ",".join(k.get_secret_value() for k in settings.encryption_keys)
