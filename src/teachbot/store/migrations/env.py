"""Alembic environment: runs on the connection teachbot hands over (see ``store/db.py``).

On PostgreSQL the migrating transaction first takes an advisory lock, so processes starting together on a
new database (the compose file starts three) migrate one after the other: the later ones find it at head.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import func, select

from teachbot.store.migrations import ours
from teachbot.store.tables import Base

MIGRATION_LOCK = 0x7EAC_4B07_3160_0A7  # pg_advisory_xact_lock key: one migrating process at a time

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
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
    context.run_migrations()
