"""Token usage in the database, so LLM quotas hold across restarts and processes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from teachbot.store.db import Database
from teachbot.store.tables import TokenUsage


def _day_start() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)


class DatabaseUsageLedger:
    """A ``UsageLedger``: one row per answer; sums per UTC day."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, scope: str, user_id: str, tokens: int) -> None:
        if tokens > 0:
            await self.db.run(lambda s: s.add(TokenUsage(scope=scope, user=user_id, tokens=tokens)))

    async def used_today(self, scope: str, user_id: str) -> tuple[int, int]:
        """(the user's tokens today across scopes, the scope's tokens today)."""
        since = _day_start()

        def totals(s: Session) -> tuple[int, int]:
            recent = TokenUsage.created_at >= since
            user = s.scalar(
                select(func.coalesce(func.sum(TokenUsage.tokens), 0)).where(recent, TokenUsage.user == user_id)
            )
            scoped = s.scalar(
                select(func.coalesce(func.sum(TokenUsage.tokens), 0)).where(recent, TokenUsage.scope == scope)
            )
            return int(user or 0), int(scoped or 0)

        return await self.db.run(totals)
