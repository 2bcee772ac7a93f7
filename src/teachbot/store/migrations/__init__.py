"""Alembic migrations (``versions/``), run through ``Database.migrate``; ``ours`` tells our tables apart."""

from __future__ import annotations

__all__ = ["QUEUE_TABLE_PREFIX", "ours"]

QUEUE_TABLE_PREFIX = "procrastinate_"  # the job queue's tables (migration 0005): procrastinate's, not our models


def ours(name: str | None, type_: str, parent_names: object = None) -> bool:
    """Alembic's ``include_name``: compare our models with our tables only, never the job queue's."""
    return not (type_ == "table" and name is not None and name.startswith(QUEUE_TABLE_PREFIX))
