"""What ``teachbot status`` and ``!status`` show: the live processes and their shards, the active version
of each scope, and the training queue. Read from the database only, so any process (or the command line,
without loading a model) can tell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from teachbot.store.processes import ProcessInfo, alive_processes
from teachbot.store.tables import ModelVersion, TrainingRun, utcnow

__all__ = ["ActiveVersion", "DeploymentStatus", "collect_status", "render_status"]


@dataclass(frozen=True, slots=True)
class ActiveVersion:
    scope: str
    name: str
    backend: str
    remote_model: str | None


@dataclass(frozen=True, slots=True)
class DeploymentStatus:
    processes: list[ProcessInfo]
    versions: list[ActiveVersion]
    queued: int  # training runs waiting for a worker
    running: int  # training runs going now, anywhere
    at: datetime


def collect_status(s: Session, heartbeat_seconds: float) -> DeploymentStatus:
    versions = [
        ActiveVersion(r.scope, r.name, r.backend, r.remote_model)
        for r in s.scalars(
            select(ModelVersion).where(ModelVersion.active.is_(True)).order_by(ModelVersion.scope, ModelVersion.backend)
        )
    ]
    counts = dict(
        s.execute(
            select(TrainingRun.state, func.count())
            .where(TrainingRun.state.in_(["queued", "running"]))
            .group_by(TrainingRun.state)
        ).all()
    )
    return DeploymentStatus(
        processes=alive_processes(s, heartbeat_seconds),
        versions=versions,
        queued=int(counts.get("queued", 0)),
        running=int(counts.get("running", 0)),
        at=utcnow(),
    )


def _ago(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def render_status(status: DeploymentStatus) -> str:
    lines = [f"Processes alive: {len(status.processes)}"]
    for p in status.processes:
        shards = f", shards {p.shards}" if p.shards else ""
        lines.append(f"  #{p.id} {p.role} on {p.host} (pid {p.pid}{shards}), seen {_ago(p.last_seen, status.at)}")
    lines.append("Active versions:" if status.versions else "Active versions: none yet")
    for v in status.versions:
        remote = f" ({v.remote_model})" if v.remote_model else ""
        lines.append(f"  {v.scope}: {v.name}{remote}")
    lines.append(f"Training queue: {status.queued} waiting, {status.running} running")
    return "\n".join(lines)
