"""Process settings, read from ``AXTRACE_*`` environment variables when asked, never at import."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from axtrace.errors import InvalidInput

DEFAULT_HOME = Path("~/.axtrace").expanduser()
MAX_ALERTS_PER_DELIVERY = 1000
"""Alerts one intake delivery may carry by default (``AXTRACE_MAX_ALERTS_PER_DELIVERY``)."""


class SourceSettings(BaseModel):
    """Routing and credentials of one intake source (``AXTRACE_SOURCES`` is a JSON map of these).

    A secret may be given as ``"block:<name>"`` to read it from the Prefect Secret block
    ``<name>`` instead of the environment.
    """

    model_config = ConfigDict(extra="forbid")

    site_label: str = "site"
    site_map: dict[str, str] = Field(default_factory=dict)
    default_site: str | None = None
    token: SecretStr | None = Field(default=None, description="Bearer token for this source.")
    signing_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Standard Webhooks secrets (whsec_...); several for key rotation.",
    )
    grafana_secret: SecretStr | None = Field(default=None, description="Grafana HMAC secret.")
    grafana_timestamp_header: str | None = Field(
        default=None,
        description="The timestamp header configured on the Grafana contact point, if any "
                    "(then its age is checked too: replay protection).",
    )

    @property
    def has_credentials(self) -> bool:
        return bool(self.token or self.signing_secrets or self.grafana_secret)


class Settings(BaseSettings):
    """Settings of one AxTrace process."""

    model_config = SettingsConfigDict(env_prefix="AXTRACE_", extra="ignore")

    home: Path = Field(default=DEFAULT_HOME, description="Folder for the embedded database.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the ledger; default sqlite:///<home>/axtrace.db.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 4280
    api_url: str | None = Field(
        default=None, description="Where CLI commands reach the AxTrace API (default host:port)."
    )
    sweep_seconds: float = Field(default=2.0, gt=0, description="How often deadlines are checked.")
    dispatch_seconds: float = Field(default=0.5, gt=0, description="Outbox poll interval.")
    dispatch_concurrency: int = Field(default=8, ge=1, description="Run creations in flight.")
    runner_poll_seconds: float = Field(default=1.0, gt=0, description="How often `serve` polls.")
    execution: Literal["warm", "spawn"] = Field(
        default="warm",
        description="How run executions start: `warm` (forked from a template process that "
        "has Prefect imported) or `spawn` (a fresh interpreter each, Prefect's default).",
    )
    runner_limit: int = Field(default=8, ge=1, description="Runs one serving process runs at once.")
    site_concurrency: int | None = Field(
        default=None, ge=1,
        description="Prefect concurrency limit of each site's deployment (None: unlimited); "
        "a storm at one site then cannot take every worker slot.",
    )
    known_sites: str | None = Field(
        default=None,
        description="Comma-separated site slugs the intake accepts without asking Prefect "
        "(benchmarks, air-gapped intakes); unset: the sites with a deployment.",
    )
    intake_token: SecretStr | None = Field(
        default=None, description="One shared bearer token, then required on every intake path."
    )
    sources: dict[str, SourceSettings] = Field(
        default_factory=dict, description="Per-source routing and credentials (JSON)."
    )
    responder_token: SecretStr | None = Field(
        default=None, description="The CLI user's own responder token (sent on ack/resolve)."
    )
    require_responder_tokens: bool = Field(
        default=False, description="Require responder tokens even before any is created."
    )
    ledger_key: SecretStr | None = Field(
        default=None,
        description="Key of the ledger's seals (or block:<name>); default: <home>/ledger.key, "
        "created on first use. Every process writing one ledger needs the same key.",
    )
    allowed_hosts: str | None = Field(
        default=None,
        description="Comma-separated `Host` names the API answers (`*`: any, behind a "
        "proxy); unset: localhost, 127.0.0.1, [::1], api_host and the interface bound to.",
    )
    allow_private_webhooks: bool = Field(
        default=False, description="Let notification blocks call loopback/private addresses."
    )
    stuck_run_seconds: float = Field(
        default=300, gt=0, description="A run RUNNING longer than this has lost its process."
    )
    db_busy_timeout: float = Field(default=30.0, gt=0, description="SQLite lock wait (s).")
    max_body_bytes: int = Field(default=1024 * 1024, description="Larger bodies get 413.")
    max_alerts_per_delivery: int = Field(
        default=MAX_ALERTS_PER_DELIVERY, ge=1,
        description="Alerts one delivery may carry; more get 413 naming `alerts`.",
    )
    max_header_chars: int = Field(
        default=4096, ge=256,
        description="Longest header value an intake request may send; longer gets 400.",
    )
    dedup_window_seconds: float = Field(
        default=3600, description="A byte-identical body within this window is a repeat."
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [h.strip() for h in value.split(",")]
        bad = [h for h in names if not h or any(c in h for c in "/ @?#")]
        if bad:
            raise ValueError(f"a comma list of host names (or *); not a host name: {bad[0]!r}")
        return value

    def source(self, name: str) -> SourceSettings:
        return self.sources.get(name) or SourceSettings()

    @property
    def intake_open(self) -> bool:
        """True when no credential of any kind is configured."""
        return self.intake_token is None and not any(
            s.has_credentials for s in self.sources.values()
        )

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.expanduser() / 'axtrace.db'}"

    @property
    def base_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"


PREFIX = "AXTRACE_"
NOT_SETTINGS = frozenset({"AXTRACE_REQUIRE_SERVICES"})
"""``AXTRACE_*`` variables that are not settings of a process: the test suite's switch (and
every ``AXTRACE_TEST_*`` variable)."""


class BadSetting(InvalidInput):
    """An ``AXTRACE_*`` variable that is not a setting (a misspelling), or a value that is not
    valid for its setting; ``field`` is the variable's name."""


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """The ``AXTRACE_*`` names in ``environ`` that no setting reads (any case, as Settings)."""
    known = {PREFIX + name.upper() for name in Settings.model_fields} | NOT_SETTINGS
    return sorted(name for name in environ if name.upper().startswith(PREFIX)
                  and name.upper() not in known
                  and not name.upper().startswith(PREFIX + "TEST_"))


def _unknown_message(name: str) -> str:
    known = [PREFIX + field.upper() for field in Settings.model_fields]
    close = difflib.get_close_matches(name.upper(), known, n=1)
    hint = f"; did you mean {close[0]}?" if close else "; see `axtrace up --help` and README"
    return f"{name} is not an AxTrace setting{hint}"


def read_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from the environment; a misspelled ``AXTRACE_*`` name or an invalid value is
    a :class:`BadSetting` naming the variable, never silently ignored."""
    unknown = unknown_variables(environ)
    if unknown:
        raise BadSetting(_unknown_message(unknown[0]), field=unknown[0])
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = PREFIX + str(error["loc"][0]).upper() if error["loc"] else PREFIX
        raise BadSetting(f"{name}: {error['msg']}", field=name) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (read once; tests call ``get_settings.cache_clear()``)."""
    return read_settings(os.environ)
