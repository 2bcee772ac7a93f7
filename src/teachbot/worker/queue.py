"""The job queue: procrastinate on the same PostgreSQL database as everything else.

Three kinds of job, each carrying its run id: training, fine-tuning (on the openai backend) and testing
(``!test``). The run's row (``training_runs``) holds the scope, the author and everything a trainer sees in
``!jobs``; a test run's report comes back in its ``result``. Training and fine-tuning jobs of one scope
share a procrastinate lock, so two workers never make versions of the same scope at once; tests change
nothing and take no lock. A worker killed mid-job leaves the job in ``doing`` (procrastinate's worker
heartbeat goes stale) and its run marked interrupted; ``retry_stalled`` puts such jobs back in the queue.
The queue's tables come from our migrations (``store/migrations/versions/0005``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from teachbot.errors import ConfigError

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger(__name__)

__all__ = ["FINE_TUNE_TASK", "QUEUE", "TEST_TASK", "TRAIN_TASK", "TrainingQueue", "stalled_after"]

QUEUE = "training"
TRAIN_TASK = "teachbot.train"  # worker/main.py's ``train``
FINE_TUNE_TASK = "teachbot.fine_tune"  # worker/main.py's ``fine_tune``
TEST_TASK = "teachbot.test"  # worker/main.py's ``evaluate``


def stalled_after(heartbeat_seconds: float) -> float:
    """A worker silent this long is gone (three missed heartbeats, as for ``processes``)."""
    return 3 * heartbeat_seconds


def _version_lock(scope: str) -> str:
    """The procrastinate lock of the jobs that make versions of ``scope``: one at a time."""
    return f"train:{scope}"


def _conninfo(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            "setting 'training_runner' (TEACHBOT_TRAINING_RUNNER): the queue needs PostgreSQL "
            "(a postgresql+psycopg:// database_url); use training_runner=local with SQLite"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class TrainingQueue:
    """The procrastinate app of this process: open it, defer training jobs, count what waits."""

    def __init__(self, database_url: str) -> None:
        try:
            import procrastinate
        except ImportError:
            raise ConfigError(
                "setting 'training_runner' (TEACHBOT_TRAINING_RUNNER): the queue needs procrastinate: "
                "pip install 'teachbot[postgres]'"
            ) from None
        self.conninfo = _conninfo(database_url)
        connector = procrastinate.PsycopgConnector(conninfo=self.conninfo, min_size=1, max_size=4)
        self.app: procrastinate.App = procrastinate.App(connector=connector)
        self._opened = False

    async def open(self) -> None:
        """Connect; the queue's tables come from our migrations (0005), applied before any process opens it."""
        await self.app.open_async()
        self._opened = True
        row = await self.app.connector.execute_query_one_async(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
        )
        if not row["present"]:
            raise ConfigError("the job queue's tables are missing: start teachbot once to migrate the database")

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self.app.close_async()

    async def defer_training(self, scope: str, run_id: int, activation: str | None = None) -> int:
        """Queue run ``run_id``; runs of one scope never overlap (one procrastinate lock per scope)."""
        deferrer = self.app.configure_task(TRAIN_TASK, queue=QUEUE, lock=_version_lock(scope))
        return await deferrer.defer_async(run_id=run_id, activation=activation)

    async def defer_fine_tuning(self, scope: str, run_id: int, *, dpo: bool = False) -> int:
        """Queue fine-tuning run ``run_id``; it waits for any training run of its scope, and they for it."""
        deferrer = self.app.configure_task(FINE_TUNE_TASK, queue=QUEUE, lock=_version_lock(scope))
        return await deferrer.defer_async(run_id=run_id, dpo=dpo)

    async def defer_test(self, run_id: int, questions: list[tuple[str, str]], version: str | None) -> int:
        """Queue test run ``run_id`` of (prompt, expected answer) pairs against ``version`` (None: what answers)."""
        deferrer = self.app.configure_task(TEST_TASK, queue=QUEUE)
        return await deferrer.defer_async(run_id=run_id, questions=[list(q) for q in questions], version=version)

    async def waiting(self) -> int:
        """Jobs waiting for a worker or running now."""
        queues = await self.app.job_manager.list_queues_async(queue=QUEUE)
        return sum(int(q.get("todo", 0)) + int(q.get("doing", 0)) for q in queues)

    async def retry_stalled(self, seconds: float) -> int:
        """Put back in the queue the jobs of workers silent for ``seconds`` (stopped mid-job); returns how many."""
        stalled = list(await self.app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=seconds))
        for job in stalled:
            await self.app.job_manager.retry_job(job)
            log.warning("job %s (%s) of a stopped worker queued again", job.id, job.task_kwargs)
        return len(stalled)
