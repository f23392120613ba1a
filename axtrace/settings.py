"""Process settings, read from ``AXTRACE_*`` environment variables when asked, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path("~/.axtrace").expanduser()


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
    runner_poll_seconds: float = Field(default=2.0, gt=0, description="How often `serve` polls.")
    runner_limit: int = Field(default=8, ge=1, description="Runs one serving process runs at once.")

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.expanduser() / 'axtrace.db'}"

    @property
    def base_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (read once; tests call ``get_settings.cache_clear()``)."""
    return Settings()
