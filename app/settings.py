"""Configuration: the only module that reads the environment (prefix ``DYAD_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEED = PROJECT_ROOT / "data" / "seed.json"


class Settings(BaseSettings):
    """Every knob of the service; each field is read from ``DYAD_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="DYAD_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///data/dyad.db",
        description="SQLAlchemy URL; relative SQLite paths are taken from the working directory.",
    )
    seed_file: Path = DEFAULT_SEED
    cache_max_age: int = Field(default=60, ge=0, description="Cache-Control max-age of GETs.")
    max_body_bytes: int = 1_000_000
    max_import_bytes: int = 200_000_000
    cors_origins: list[str] = ["*"]
    pool_size: int = 10
    pool_timeout: float = 2.0
    sqlite_busy_timeout_ms: int = 5_000
    log_level: str = "info"
    cache_enabled: bool = Field(
        default=True, description="Answer repeated GETs from memory until the data changes."
    )
    cache_max_entries: int = Field(default=10_000, ge=1)
    redis_url: str | None = Field(
        default=None, description="Redis shared by every worker for rate limits (redis://...)."
    )
    rate_limit_enabled: bool = Field(
        default=True, description="Switch off only for benchmarks on loopback."
    )
    rate_limit_reads: int = Field(default=1200, ge=1, description="GETs per client per minute.")
    rate_limit_writes: int = Field(
        default=60, ge=1, description="Writes (POST, PATCH, DELETE) per client per minute."
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
