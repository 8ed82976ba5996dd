"""The dispatchers: put each job on the render queue (and each preview on the previews
queue), and again whenever its message may be lost.

Submissions never talk to the broker: a request only records events. This follower
sends the queue message afterwards, so a submission succeeds even when Redis is down,
and the job is dispatched as soon as Redis is back (the position only moves past
jobs that were sent). A crash between sending and recording the position sends a job
twice; the render actor ignores jobs that are already taken or finished.

A message can also be lost after it was sent: with a worker killed mid-render (its
message sits in that worker's unacknowledged set, which Dramatiq requeues only by
chance, hours later, or never if Redis loses it), with a worker killed before it
started the jobs it had prefetched, or with Redis restarted empty. So the dispatcher
keeps every unfinished job in a table of its own (`render_watch`), fed by the jobs'
events, and sends a job again when it is overdue:

- a processing job whose lease has run out without a sign of life (a progress report
  or a renewal; `PHANTOMFLOW_RENDER_LEASE_SECONDS`, recorded by the attempt): the next
  worker to take the message takes the job over as a new attempt. Sent again each
  lease while it stays silent.
- a queued job not started within the lease of being sent (its message may be gone):
  sent again, then after twice as long, and so on up to an hour. A duplicate message
  costs a worker one read: the job is taken or finished by then.

Previews (`PreviewDispatcher`, table `preview_watch`) are watched the same way: a
preview's worker shows its signs of life by its progress reports and its storyboard,
and the next worker takes a silent one over once the lease has run out
(domain/previews.py); a preview deleted or expired is no longer watched.

The table is looked at every `due_interval` seconds, by the lead copy only. Times in it
are seconds since the epoch: events' own times for signs of life, this process's clock
for sends (so clocks of workers and projections hosts must agree to well within the
lease, as NTP keeps them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.previews import Preview
from phantomflow.projections.runner import Follower, Tracked

log = logging.getLogger(__name__)

WATCH_TABLE = "render_watch"
# A queued job is sent again at most this long after its previous send.
MAX_QUEUED_RESEND_SECONDS = 3600.0
# Overdue jobs sent again per look at the table (the rest wait for the next look).
RESEND_BATCH = 500


class Dispatcher(Follower):
    """Dispatches render jobs; a subclass names another aggregate's events and table."""

    name = "dispatcher"
    table = WATCH_TABLE
    tables = (table,)
    kind = "job"  # in logs
    created: tuple[type, ...] = (RenderJob.Submitted,)
    started: tuple[type, ...] = (RenderJob.Started,)
    signs_of_life: tuple[type, ...] = (RenderJob.ProgressReported, RenderJob.LeaseRenewed)
    endings: tuple[type, ...] = (RenderJob.Completed, RenderJob.Failed, RenderJob.Cancelled)
    topics = topics_of(*created, *started, *signs_of_life, *endings)

    def __init__(
        self,
        send: Callable[[str], object],
        lease_seconds: float = 300.0,
        due_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.send = send
        # The lease of jobs started without one recorded, and how long a queued job
        # may wait after being sent before it is sent again.
        self.lease_seconds = lease_seconds
        self.due_interval = due_interval
        self.clock = clock

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            " job_id TEXT PRIMARY KEY,"
            " status TEXT NOT NULL,"  # queued | processing
            " attempt INTEGER NOT NULL,"
            " lease_seconds DOUBLE PRECISION NOT NULL,"
            " alive_at DOUBLE PRECISION NOT NULL,"  # the last sign of life (event time)
            " sends INTEGER NOT NULL,"
            " due_at DOUBLE PRECISION NOT NULL)"  # when it is overdue unless heard of
        )
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_due ON {self.table} (due_at)")

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        for handled, tracked in enumerate(events):
            event = tracked.event
            job_id = str(event.originator_id)
            at = event.timestamp.timestamp()
            if isinstance(event, self.created):
                try:
                    self.send(job_id)
                except Exception as error:  # the broker is unreachable: try again later
                    log.warning("could not dispatch %s %s yet: %s", self.kind, job_id, error)
                    return handled
                cursor.execute(
                    f"INSERT INTO {self.table} "
                    "(job_id, status, attempt, lease_seconds, alive_at, sends, due_at) "
                    "VALUES (?, 'queued', 0, ?, ?, 1, ?) ON CONFLICT (job_id) DO NOTHING",
                    (job_id, self.lease_seconds, at, self.clock() + self.lease_seconds),
                )
            elif isinstance(event, self.started):
                # A preview's attempt records no lease: the dispatcher's own applies.
                lease = getattr(event, "lease_seconds", None) or self.lease_seconds
                cursor.execute(
                    f"UPDATE {self.table} SET status = 'processing', attempt = ?,"
                    " lease_seconds = ?, alive_at = ?, sends = 1, due_at = ? WHERE job_id = ?",
                    (event.attempt, lease, at, at + lease, job_id),
                )
            elif isinstance(event, self.signs_of_life):
                cursor.execute(
                    f"UPDATE {self.table} SET alive_at = ?, due_at = ? + lease_seconds"
                    " WHERE job_id = ? AND status = 'processing' AND alive_at < ?",
                    (at, at, job_id, at),
                )
            elif isinstance(event, self.endings):
                cursor.execute(f"DELETE FROM {self.table} WHERE job_id = ?", (job_id,))
        return len(events)

    def due(self, cursor: Cursor) -> int:
        """Send every overdue job again; return how many were sent."""
        now = self.clock()
        cursor.execute(
            f"SELECT job_id, status, attempt, lease_seconds, alive_at, sends FROM {self.table}"
            f" WHERE due_at <= ? ORDER BY due_at LIMIT {RESEND_BATCH}",
            (now,),
        )
        sent = 0
        for job_id, status, attempt, lease, alive_at, sends in cursor.fetchall():
            try:
                self.send(job_id)
            except Exception as error:
                log.warning("could not dispatch %s %s again yet: %s", self.kind, job_id, error)
                break
            if status == "processing":
                log.warning(
                    "%s %s: attempt %d silent for %.0f s (lease %.0f s); dispatched again",
                    self.kind, job_id, attempt, now - alive_at, lease,
                )  # fmt: skip
                wait = lease
            else:
                log.warning("%s %s: queued and not started; dispatched again", self.kind, job_id)
                wait = min(lease * 2**sends, MAX_QUEUED_RESEND_SECONDS)
            cursor.execute(
                f"UPDATE {self.table} SET sends = sends + 1, due_at = ? WHERE job_id = ?",
                (now + wait, job_id),
            )
            sent += 1
        return sent


class PreviewDispatcher(Dispatcher):
    """Dispatches previews to the previews queue (workers/previews.py), watched alike."""

    name = "preview-dispatcher"
    table = "preview_watch"
    tables = (table,)
    kind = "preview"
    created = (Preview.Created,)
    started = (Preview.Started,)
    signs_of_life = (Preview.ProgressReported, Preview.StoryboardReady)
    endings = (Preview.ProxyReady, Preview.Failed, Preview.Deleted, Preview.Expired)
    topics = topics_of(*created, *started, *signs_of_life, *endings)
