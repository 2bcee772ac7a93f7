"""Daily token quotas per user and per server, so one person or one guild cannot spend the LLM budget.

Days are UTC days. The ledger that remembers usage is a small protocol: an in-memory one here (tests,
console), a database-backed one in the store. ``0`` means unlimited. The user quota counts a user's
tokens in every scope; the server quota counts everyone's tokens in one scope, except the global
scope (direct messages and the console), which only user quotas limit.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol, runtime_checkable

from teachbot.answering.protocols import GLOBAL_SCOPE
from teachbot.config import Settings
from teachbot.errors import UserError

__all__ = ["InMemoryUsageLedger", "QuotaExceeded", "QuotaGuard", "UsageLedger", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@runtime_checkable
class UsageLedger(Protocol):
    """Remembers tokens spent today; ``used_today`` returns (the user's total, the scope's total)."""

    async def record(self, scope: str, user_id: str, tokens: int) -> None: ...

    async def used_today(self, scope: str, user_id: str) -> tuple[int, int]: ...


class QuotaExceeded(UserError):
    """A user or a server has spent its tokens for today."""

    def __init__(self, message: str, *, resets_at: datetime) -> None:
        super().__init__(message)
        self.resets_at = resets_at


class InMemoryUsageLedger:
    """Usage kept in a dict for the current UTC day; earlier days are forgotten as the day turns."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._day: date | None = None
        self._users: defaultdict[str, int] = defaultdict(int)
        self._scopes: defaultdict[str, int] = defaultdict(int)
        self._lock = asyncio.Lock()

    def _roll(self) -> None:
        today = self._clock().astimezone(UTC).date()
        if today != self._day:
            self._day = today
            self._users.clear()
            self._scopes.clear()

    async def record(self, scope: str, user_id: str, tokens: int) -> None:
        async with self._lock:
            self._roll()
            self._users[user_id] += max(tokens, 0)
            self._scopes[scope] += max(tokens, 0)

    async def used_today(self, scope: str, user_id: str) -> tuple[int, int]:
        async with self._lock:
            self._roll()
            return self._users.get(user_id, 0), self._scopes.get(scope, 0)


class QuotaGuard:
    """Refuses a question when its asker or its server is over today's quota; records what was spent."""

    def __init__(
        self,
        ledger: UsageLedger,
        *,
        user_quota: int = 0,
        scope_quota: int = 0,
        clock: Clock = utc_now,
    ) -> None:
        self.ledger = ledger
        self.user_quota = user_quota
        self.scope_quota = scope_quota
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, ledger: UsageLedger, clock: Clock = utc_now) -> QuotaGuard:
        return cls(ledger, user_quota=settings.user_token_quota, scope_quota=settings.guild_token_quota, clock=clock)

    @property
    def unlimited(self) -> bool:
        return self.user_quota == 0 and self.scope_quota == 0

    async def check(self, scope: str, user_id: str) -> None:
        """Raise ``QuotaExceeded`` (a ``UserError`` saying when it resets) if a quota is spent."""
        if self.unlimited:
            return
        user_used, scope_used = await self.ledger.used_today(scope, user_id)
        if self.user_quota and user_id and user_used >= self.user_quota:
            self._refuse(f"You have used your {self.user_quota:,} LLM tokens for today")
        if self.scope_quota and scope != GLOBAL_SCOPE and scope_used >= self.scope_quota:
            self._refuse(f"This server has used its {self.scope_quota:,} LLM tokens for today")

    async def record(self, scope: str, user_id: str, tokens: int) -> None:
        """Add ``tokens`` to today's usage (kept even without quotas: it is the usage record)."""
        if tokens > 0:
            await self.ledger.record(scope, user_id, tokens)

    def _refuse(self, what: str) -> None:
        now = self._clock().astimezone(UTC)
        resets = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        raise QuotaExceeded(f"{what}. The quota resets at 00:00 UTC, in {_duration(resets - now)}.", resets_at=resets)


def _duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 1)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
