"""The jobs read model: what `GET /api/jobs` and `GET /api/jobs/{job_id}` answer from.

One row per job: the columns the list filters and sorts on, and the job's public
document (`projections/job_view.py`) as JSON; and one row per top-level metadata key a
job can be found by (`GET /api/jobs?metadata.<key>=<value>`, domain/metadata.py).
Timestamps are the events' own, so a rebuild from zero writes the same rows byte for
byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import AggregateRecorder

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor, ViewStore
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.metadata import filter_values
from phantomflow.projections import job_view
from phantomflow.projections.paging import newest_first
from phantomflow.projections.runner import Follower, Tracked

# The read model's name carries its version: a change of shape gets a new table and a
# new tracked position, so it is built from zero beside the old one.
TABLE = "jobs_view_v5"
METADATA_TABLE = "jobs_metadata_v5"


class JobsProjection(Follower):
    name = "jobs_v5"
    topics = topics_of(
        RenderJob.Submitted,
        RenderJob.Started,
        RenderJob.ProgressReported,
        RenderJob.Completed,
        RenderJob.Failed,
        RenderJob.Cancelled,
        *job_view.EXPORT_EVENTS,
    )
    tables = (TABLE, METADATA_TABLE)

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " job_id TEXT PRIMARY KEY,"
            " account_id TEXT NOT NULL,"
            " status TEXT NOT NULL,"
            " sandbox INTEGER NOT NULL,"
            " seq BIGINT NOT NULL,"
            " version INTEGER NOT NULL,"
            " doc TEXT NOT NULL)"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_by_account ON {TABLE} (account_id, sandbox, seq)"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {TABLE}_by_status ON {TABLE} (account_id, status, seq)"
        )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {METADATA_TABLE} ("
            " job_id TEXT NOT NULL,"
            " account_id TEXT NOT NULL,"
            " name TEXT NOT NULL,"
            " value TEXT NOT NULL,"
            " PRIMARY KEY (job_id, name))"
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {METADATA_TABLE}_by_value"
            f" ON {METADATA_TABLE} (account_id, name, value)"
        )

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        # Apply the batch in memory, then write each touched job once.
        rows: dict[str, dict[str, Any]] = {}
        found_by: list[tuple[str, str, str, str]] = []
        for tracked in events:
            job_id = str(tracked.event.originator_id)
            if isinstance(tracked.event, RenderJob.Submitted):
                rows[job_id] = submitted_row(tracked)
                found_by.extend(
                    (job_id, rows[job_id]["account_id"], name, value)
                    for name, value in filter_values(rows[job_id]["doc"]["metadata"]).items()
                )
                continue
            row = rows.get(job_id) or load_row(cursor, job_id)
            if row is None:
                continue  # history before this job's submission cannot exist; be safe
            apply_to_row(row, tracked.event)
            rows[job_id] = row
        if rows:
            cursor.executemany(
                f"INSERT INTO {TABLE} (job_id, account_id, status, sandbox, seq, version, doc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (job_id) DO UPDATE SET status = excluded.status,"
                " version = excluded.version, doc = excluded.doc",
                [
                    (
                        job_id,
                        row["account_id"],
                        row["status"],
                        int(row["doc"]["sandbox"]),
                        row["seq"],
                        row["version"],
                        json.dumps(row["doc"], separators=(",", ":")),
                    )
                    for job_id, row in rows.items()
                ],
            )
        if found_by:
            cursor.executemany(
                f"INSERT INTO {METADATA_TABLE} (job_id, account_id, name, value)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (job_id, name) DO NOTHING",
                found_by,
            )
        return len(events)


def submitted_row(tracked: Tracked) -> dict[str, Any]:
    event = tracked.event
    return {
        "account_id": str(event.account_id),
        "status": "queued",
        "seq": tracked.position,
        # The job's version as of the last event applied: a reader can tell whether
        # the event store holds something newer (see `followed_events_after`).
        "version": event.originator_version,
        "doc": job_view.submitted(event),
    }


def replay(events: Iterable[Any]) -> dict[str, Any] | None:
    """A job's read-model row straight from its own events, bypassing the read model.

    Used when the read model has not caught up yet with a job submitted a moment ago:
    the same functions fold the same events, so the answer is the one the read model
    is about to give."""
    row: dict[str, Any] | None = None
    for event in events:
        if isinstance(event, RenderJob.Submitted):
            row = submitted_row(Tracked(position=0, event=event))
        elif row is not None:
            apply_to_row(row, event)
    return row


def followed_events_after(recorder: AggregateRecorder, job_id: UUID, version: int) -> bool:
    """Whether the event store holds an event of the job, newer than `version`, that
    this read model follows: then a row at `version` is behind (a GET straight after
    a cancel must not answer "queued"). One indexed read of the job's newest events."""
    newer = recorder.select_events(job_id, gt=version)
    return any(stored.topic in JobsProjection.topics for stored in newer)


def apply_to_row(row: dict[str, Any], event: Any) -> None:
    # Only what changes the document: a webhook attempt is not an update.
    if job_view.apply(row["doc"], event):
        row["status"] = row["doc"]["status"]
        row["version"] = event.originator_version


def load_row(cursor: Cursor, job_id: str) -> dict[str, Any] | None:
    cursor.execute(
        f"SELECT account_id, status, seq, version, doc FROM {TABLE} WHERE job_id = ?", (job_id,)
    )
    found = cursor.fetchone()
    if found is None:
        return None
    account_id, status, seq, version, doc = found
    return {
        "account_id": account_id,
        "status": status,
        "seq": seq,
        "version": version,
        "doc": json.loads(doc),
    }


@dataclass(frozen=True)
class JobPage:
    jobs: list[dict[str, Any]]
    total: int


class JobsQueries:
    """Reads of the jobs read model, always scoped to one account."""

    def __init__(self, store: ViewStore, app: Application[UUID]) -> None:
        self.store = store
        # The event store, for the jobs the read model has not caught up with yet.
        self.app = app

    def current(self, account_id: str, job_id: str, sandbox: bool = False) -> dict[str, Any] | None:
        """One account's job as it stands: from the read model, or from its events if the
        read model has not caught up with it yet (a GET straight after its POST must not
        answer 404, nor one straight after a cancel answer "queued", nor one straight
        after its output's deletion show the output).
        Sandbox keys see sandbox jobs only; live keys live jobs only."""
        found = self.get_versioned(account_id, job_id, sandbox)
        if found is not None:
            doc, version = found
            # A finished job can be behind too: its exports and the deletion of its
            # output come after it completed.
            if not followed_events_after(self.app.recorder, UUID(job_id), version):
                return doc
        row = replay(self.app.events.get(UUID(job_id)))
        if row is None or row["account_id"] != account_id or row["doc"]["sandbox"] != sandbox:
            return None
        return row["doc"]

    def get(self, account_id: str, job_id: str, sandbox: bool = False) -> dict[str, Any] | None:
        """A job of the account's live jobs, or of its sandbox jobs: never both."""
        found = self.get_versioned(account_id, job_id, sandbox)
        return found[0] if found else None

    def get_versioned(
        self, account_id: str, job_id: str, sandbox: bool = False
    ) -> tuple[dict[str, Any], int] | None:
        """(document, the job's version it reflects), as `get` finds it."""
        with self.store.read() as cursor:
            cursor.execute(
                f"SELECT doc, version FROM {TABLE}"
                " WHERE job_id = ? AND account_id = ? AND sandbox = ?",
                (job_id, account_id, int(sandbox)),
            )
            found = cursor.fetchone()
        return (json.loads(found[0]), int(found[1])) if found else None

    def page(
        self,
        account_id: str,
        status: str | None,
        page: int,
        limit: int,
        sandbox: bool = False,
        metadata: tuple[str, str] | None = None,
    ) -> JobPage:
        """A page of the account's jobs, newest first; with `status`, in that status;
        with `metadata` = (key, value), those whose metadata has it (domain/metadata.py)."""
        where, params = "account_id = ? AND sandbox = ?", [account_id, int(sandbox)]
        if status:
            where += " AND status = ?"
            params.append(status)
        if metadata is not None:
            where += (
                f" AND job_id IN (SELECT job_id FROM {METADATA_TABLE}"
                " WHERE account_id = ? AND name = ? AND value = ?)"
            )
            params.extend([account_id, *metadata])
        jobs, total = newest_first(self.store, TABLE, where, params, page, limit)
        return JobPage(jobs=jobs, total=total)
