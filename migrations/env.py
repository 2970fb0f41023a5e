"""Alembic environment: Dyad's models and Dyad's database URL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from app.db import create_db_engine
from app.migrate import include_object
from app.models import metadata
from app.settings import get_settings

config = context.config


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        include_object=include_object,
        **kwargs,
    )


def run_offline() -> None:
    _configure(
        url=config.get_main_option("sqlalchemy.url") or get_settings().database_url,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
