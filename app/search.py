"""Full-text search over every kind of fact (filled in by the read API)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection


def reindex(connection: Connection, changes: Iterable[tuple[str, str, str]]) -> None:
    """Bring the search index in line with the entities a write created, updated or deleted."""
    return None


from fastapi import APIRouter  # noqa: E402

router = APIRouter(tags=["search"])
