"""Following the change feed: what another process taught, forgot or activated applies here too.

Every process receives every change, its own included, so each step is idempotent: teaching an example
the overlay already holds replaces it with itself, forgetting one that is gone does nothing, and a
version activation makes this process load whatever the database says is active now (not what the
change named, which a later activation may already have replaced).
"""

from __future__ import annotations

import logging

from teachbot.answering.knowledge import Knowledge
from teachbot.store.changes import Change, ChangeKind
from teachbot.training.versions import VersionRegistry

log = logging.getLogger(__name__)

__all__ = ["ChangeFollower"]


class ChangeFollower:
    """The callback of this process's ``ChangeFeed``."""

    def __init__(self, knowledge: Knowledge, versions: VersionRegistry) -> None:
        self.knowledge = knowledge
        self.versions = versions
        self.applied = 0  # changes applied, for logs and tests

    async def apply(self, change: Change) -> None:
        payload = change.payload
        if change.kind in (ChangeKind.TAUGHT, ChangeKind.REFUSED):
            self.knowledge.teach(
                change.scope,
                int(payload["example_id"]),
                str(payload["prompt"]),
                str(payload["answer"]),
                negative=change.kind == ChangeKind.REFUSED,
            )
        elif change.kind == ChangeKind.FORGOTTEN:
            self.knowledge.forget(change.scope, int(payload["example_id"]))
        elif change.kind == ChangeKind.VERSION_ACTIVATED:
            await self.versions.sync_active(change.scope)
        elif change.kind == ChangeKind.REVIEW_DECIDED:
            pass  # the review queue is read from the database; what an approval taught has its own change
        else:
            log.debug("change %s of unknown kind %r ignored", change.id, change.kind)
            return
        self.applied += 1
