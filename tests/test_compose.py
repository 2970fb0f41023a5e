"""docker-compose.yml: PostgreSQL, Redis, a one-shot migration and two app replicas.

Docker cannot run on the machines this suite runs on, so the file is checked as data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]  # type: ignore[no-any-return]


def test_postgres_and_redis_with_health_checks() -> None:
    found = services()
    assert found["postgres"]["image"].startswith("postgres:")
    assert found["redis"]["image"].startswith("redis:")
    assert "healthcheck" in found["postgres"] and "healthcheck" in found["redis"]


def test_two_stateless_replicas_share_postgres_and_redis() -> None:
    apps = {
        name: s for name, s in services().items() if "serve" in " ".join(s.get("entrypoint", []))
    }
    assert len(apps) == 2
    ports = set()
    for service in apps.values():
        env = service["environment"]
        assert env["DYAD_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["DYAD_DATABASE_URL"]
        assert env["DYAD_REDIS_URL"].startswith("redis://redis:")
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "0.0.0.0" in service["entrypoint"]
        ports.update(service["ports"])
        assert "volumes" not in service  # stateless: nothing of theirs to keep
    assert len(ports) == 2


def test_migrations_run_once_before_the_replicas() -> None:
    migrate = services()["migrate"]
    command = " ".join(migrate["entrypoint"])
    assert "dyad db upgrade" in command and "dyad seed --if-changed" in command
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
