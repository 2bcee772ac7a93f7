"""the job queue's tables (procrastinate's schema), on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 22:00:00.000000

Migrating at start (every teachbot process does) is the one way the database is set up, the job queue included:
this applies the schema shipped with the procrastinate version teachbot pins. A later upgrade of that pin
comes with a migration of its own applying procrastinate's migration scripts between the two versions.
SQLite has no job queue: nothing to do there. A database whose queue tables were created before this
migration (by the queue itself, same version) is left as it is.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from alembic import op

from teachbot.errors import ConfigError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PROCRASTINATE = "3.10.0"  # the version pinned in pyproject.toml (extra ``postgres``) whose schema this applies


def _schema() -> str:
    try:
        installed = version("procrastinate")
        from procrastinate.schema import SchemaManager
    except (PackageNotFoundError, ImportError):
        raise ConfigError(
            "PostgreSQL databases hold the training job queue, which needs procrastinate: "
            "pip install 'teachbot[postgres]'"
        ) from None
    if installed != PROCRASTINATE:
        raise ConfigError(
            f"this database is set up for procrastinate {PROCRASTINATE}, but {installed} is installed: "
            "pip install 'teachbot[postgres]'"
        )
    return SchemaManager.get_schema()


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = _schema()
    cursor = bind.connection.cursor()  # the driver's cursor: the script has many statements and literal '%'
    try:
        cursor.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        row = cursor.fetchone()
        if not (row and row[0]):
            cursor.execute(schema)
    finally:
        cursor.close()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        DO $$
        DECLARE item record;
        BEGIN
            FOR item IN SELECT oid::regprocedure AS signature FROM pg_proc WHERE proname LIKE 'procrastinate\\_%' LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || item.signature || ' CASCADE';
            END LOOP;
        END $$;
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
            procrastinate_workers CASCADE;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, procrastinate_job_status
            CASCADE;
        """
    )
