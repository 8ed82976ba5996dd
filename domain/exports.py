"""Exports: after a render completes, its MP4 goes to each of the script's targets.

A script's `exports` is a list of targets, each naming an integration of the same type
(`domain/integrations.py`) and its own fields (a key prefix, a directory, recipients, a
title…). The job records what becomes of each, as events on the job:

    ExportStarted(index, attempt)            a worker is delivering it
    ExportSucceeded(index, attempt, location, bytes, duration_ms)
    ExportFailed(index, attempt, code, message, final, next_attempt_at)
    ExportSkipped(index, code, message)      not run (sandbox rules, …)
    ExportsSettled                           the last one has settled

An export is `pending` (waiting for the render, or for its next attempt), `running`,
then settles as `succeeded`, `failed` (final) or `skipped`. Once every export of a
completed job has settled, `ExportsSettled` is recorded in the same write: the job's
webhook waits for it. An export failing never touches the render, its file or its
charge. A job that fails or is cancelled runs none of its exports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from phantomflow.domain.errors import DomainError

PENDING = "pending"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"
SETTLED = (SUCCEEDED, FAILED, SKIPPED)

MAX_EXPORTS = 10

# Seconds from a failed attempt to the next: 30 s × 4ⁿ, capped at 12 h; eight attempts
# over about 23 h 22 min, then the export has failed for good.
RETRY_DELAYS: tuple[float, ...] = (30, 120, 480, 1920, 7680, 30720, 43200)

# Codes of exports that did not run or did not finish.
OUTPUT_DELETED = "OUTPUT_DELETED"


class ExportTargetInvalid(DomainError):
    """An export target of a submission cannot be used; `path` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class IllegalExportTransition(DomainError):
    """The export cannot change in the way asked (already settled, another attempt…)."""


@dataclass(frozen=True)
class ExportOutcome:
    """What one attempt came to: `location` and `bytes` when delivered, else an error.
    `permanent` errors (refused credentials, a wrong host key…) are not retried."""

    location: str | None = None
    bytes: int = 0
    code: str | None = None
    message: str | None = None
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        return self.code is None


def initial_states(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target's state before anything ran (JSON-ready: snapshots store it)."""
    return [
        {
            "status": PENDING,
            "attempts": 0,
            "started_at": None,
            "location": None,
            "bytes": None,
            "duration_ms": None,
            "error": None,
            "next_attempt_at": None,
        }
        for _ in targets
    ]


def is_settled(states: list[dict[str, Any]]) -> bool:
    return all(state["status"] in SETTLED for state in states)


def next_attempt_delay(attempt: int, delays: tuple[float, ...] = RETRY_DELAYS) -> float | None:
    """Seconds until attempt `attempt + 1`, or None when `attempt` was the last."""
    return delays[attempt - 1] if attempt <= len(delays) else None


def lease_expired(started_at: str | None, now: datetime, lease: timedelta) -> bool:
    if started_at is None:
        return True
    return now - datetime.fromisoformat(started_at) >= lease


def export_message_id(job_id: UUID, index: int, attempt: int) -> str:
    return f"{job_id}:{index}:{attempt}"
