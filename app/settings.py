"""Configuration: the only module that reads the environment (prefix ``DYAD_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
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
    max_body_bytes: int = Field(
        default=1_000_000, ge=1, description="Largest request body, except imports: else 413."
    )
    max_import_bytes: int = Field(
        default=200_000_000, ge=1, description="Largest body of POST /v1/imports: else 413."
    )
    cors_origins: list[str] = ["*"]
    cors_allow_credentials: bool = Field(
        default=False,
        description="Let browsers send cookies or HTTP auth cross-origin; refused with origin *.",
    )
    pool_size: int = 10
    pool_timeout: float = 2.0
    sqlite_busy_timeout_ms: int = 5_000
    sqlite_mmap_bytes: int = Field(
        default=1 << 30,
        ge=0,
        description="How much of a SQLite database its connections read through memory "
        "mapping (shared by every connection and process, in the OS page cache) instead "
        "of copying pages into each connection's own 2 MB cache; 0: none.",
    )
    query_timeout_ms: int = Field(
        default=5_000,
        ge=0,
        description="A read statement of the API running longer is cancelled (503); 0: no limit.",
    )
    shutdown_grace_seconds: int = Field(
        default=8,
        ge=0,
        description="On SIGTERM, how long requests in flight may take to finish (under the 10 s "
        "docker stop waits before SIGKILL).",
    )
    log_level: str = "info"
    cache_enabled: bool = Field(
        default=True, description="Answer repeated GETs from memory until the data changes."
    )
    cache_max_entries: int = Field(default=10_000, ge=1)
    cache_max_bytes: int = Field(
        default=256 * 2**20,
        ge=0,
        description="Memory the cached answers may hold, bodies and headers (256 MiB); the "
        "least recently used go first.",
    )
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
    bad_key_limit: int = Field(
        default=10,
        ge=1,
        description="Refused API keys per client IP per minute; past it, 429 without a look at "
        "the key.",
    )
    bad_key_throttle: bool | None = Field(
        default=None, description="Throttle refused keys; unset: on whenever rate limits are."
    )

    @model_validator(mode="after")
    def _no_credentials_for_every_origin(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "DYAD_CORS_ALLOW_CREDENTIALS=true needs DYAD_CORS_ORIGINS to list the allowed "
                'origins: with "*" any site could act with a visitor\'s credentials.'
            )
        return self

    @property
    def throttles_bad_keys(self) -> bool:
        return self.rate_limit_enabled if self.bad_key_throttle is None else self.bad_key_throttle


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
