"""Alembic environment: runs on the connection teachbot hands over (see ``store/db.py``)."""

from __future__ import annotations

from alembic import context

from teachbot.store.migrations import ours
from teachbot.store.tables import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is run by hand
    raise RuntimeError("run migrations through teachbot (teachbot.store.db.Database.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=ours,
)
with context.begin_transaction():
    context.run_migrations()
