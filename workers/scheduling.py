"""What the webhook and export schedulers share: following the event log, turning events
into queue messages (some of them delayed), and sending a message again when it may have
been lost.

A scheduler's position moves only past events whose messages were sent, so nothing is
lost while the broker (or the event store) is unreachable: the event that could not be
scheduled is offered again on the next round.

A message can also be lost after it was sent, as a render's can (workers/dispatch.py):
Redis restarted empty (a delayed retry waiting in it included), or a worker killed
while it held the message. So each scheduler keeps the messages it is waiting to hear
of in a table of its own (`<name>_watch`), one row per export or delivery: the row is
written when the message is sent, and deleted when the event log shows its outcome (an
attempt recorded). A message not heard of by `due_at` (when it was due, plus
`grace_seconds`, or the attempt's own lease once it has started) is sent again, then
after twice as long, and so on up to an hour, at most MAX_SENDS times in all. A copy
costs a worker one read: each attempt is recorded once, so it runs once.
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import dramatiq

from phantomflow.adapters.viewstore import Cursor
from phantomflow.domain.application import PhantomFlow
from phantomflow.projections.runner import Follower, Tracked

log = logging.getLogger(__name__)

# send(job_id, what, number, delay_seconds): `what` is an export's index or a webhook's
# trigger, `number` the attempt.
Send = Callable[[str, Any, int, float], object]

# A watched message is sent again at most this long after its previous send.
MAX_RESEND_SECONDS = 3600.0
# Sends of one message in all (the first included) before it is given up, with a log.
MAX_SENDS = 8
# Overdue messages sent again per look at the table (the rest wait for the next look).
RESEND_BATCH = 500


class Scheduler(Follower):
    """Calls `schedule` for each followed event, in order, stopping at the first the
    broker (or the store) refuses; sends overdue messages again every `due_interval`."""

    # What is scheduled, in logs ("webhook", "exports").
    what: str

    def __init__(
        self,
        app: PhantomFlow,
        send: Send,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        grace_seconds: float = 300.0,
        due_interval: float = 1.0,
    ) -> None:
        self.app = app
        self.send = send
        self.clock = clock
        self.grace_seconds = grace_seconds
        self.due_interval = due_interval
        self._cursor: Cursor | None = None

    @property
    def watch_table(self) -> str:
        return f"{self.name}_watch"

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.watch_table,)

    def create_tables(self, cursor: Cursor) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {self.watch_table} ("
            " key TEXT PRIMARY KEY,"  # job_id:what:number
            " job_id TEXT NOT NULL,"
            " what TEXT NOT NULL,"
            " message TEXT NOT NULL,"  # JSON [job_id, what, number]
            " sends INTEGER NOT NULL,"
            " due_at DOUBLE PRECISION NOT NULL)"  # seconds since the epoch
        )
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {self.watch_table}_due ON {self.watch_table} (due_at)"
        )

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        self._cursor = cursor
        try:
            for handled, tracked in enumerate(events):
                try:
                    self.schedule(tracked.event)
                except Exception as error:  # the broker (or the store) is unreachable
                    log.warning("could not schedule %s of job %s yet: %s",
                                self.what, tracked.event.originator_id, error)  # fmt: skip
                    return handled
            return len(events)
        finally:
            self._cursor = None

    @abstractmethod
    def schedule(self, event: Any) -> None:
        """Send what `event` calls for (perhaps nothing), by `dispatch`; say by `heard`
        and `running` what it tells of messages already sent."""

    # --- inside `schedule` -----------------------------------------------------------

    def dispatch(self, job_id: str, what: Any, number: int, delay_seconds: float) -> None:
        """Send a message, and watch for its outcome from when it is due."""
        self.send(job_id, what, number, delay_seconds)
        due_at = self._now() + delay_seconds + self.grace_seconds
        self._execute(
            f"INSERT INTO {self.watch_table} (key, job_id, what, message, sends, due_at)"
            " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (key) DO UPDATE SET sends = 1,"
            " due_at = excluded.due_at",
            (_key(job_id, what, number), job_id, str(what),
             json.dumps([job_id, what, number]), due_at),
        )  # fmt: skip

    def running(self, job_id: str, what: Any, number: int, until: datetime) -> None:
        """The message's attempt has started: it is overdue only after `until` (its
        lease) and the grace."""
        self._execute(
            f"UPDATE {self.watch_table} SET due_at = ? WHERE key = ?",
            (until.timestamp() + self.grace_seconds, _key(job_id, what, number)),
        )

    def heard(self, job_id: str, what: Any | None = None, number: int | None = None) -> None:
        """An outcome is recorded: of attempt `number` of `what`, of every attempt of
        `what` (no number), or of all the job's (nothing more will happen): no longer
        watched."""
        if number is not None:
            where, parameters = "key = ?", (_key(job_id, what, number),)
        elif what is not None:
            where, parameters = "job_id = ? AND what = ?", (job_id, str(what))
        else:
            where, parameters = "job_id = ?", (job_id,)
        self._execute(f"DELETE FROM {self.watch_table} WHERE {where}", parameters)

    def submitted(self, event: Any) -> Any:
        """The job's first event (`Submitted`), which holds its webhook and exports."""
        return next(iter(self.app.events.get(event.originator_id, lte=1)), None)

    def delay_until(self, moment: datetime) -> float:
        """Seconds from now until `moment`; 0 if it has passed."""
        return max(0.0, (moment - self.clock()).total_seconds())

    def _now(self) -> float:
        return self.clock().timestamp()

    def _execute(self, sql: str, parameters: tuple[Any, ...]) -> None:
        assert self._cursor is not None, "only inside handle"
        self._cursor.execute(sql, parameters)

    # --- every due_interval ---------------------------------------------------------

    def due(self, cursor: Cursor) -> int:
        """Send every overdue message again; return how many were sent."""
        now = self._now()
        cursor.execute(
            f"SELECT key, message, sends FROM {self.watch_table}"
            f" WHERE due_at <= ? ORDER BY due_at LIMIT {RESEND_BATCH}",
            (now,),
        )
        sent = 0
        for key, message, sends in cursor.fetchall():
            job_id, what, number = json.loads(message)
            if sends >= MAX_SENDS:
                log.error("%s %s of job %s (attempt %d): no outcome after %d sends; given up",
                          self.what, what, job_id, number, sends)  # fmt: skip
                cursor.execute(f"DELETE FROM {self.watch_table} WHERE key = ?", (key,))
                continue
            try:
                self.send(job_id, what, number, 0)
            except Exception as error:
                log.warning("could not send %s of job %s again yet: %s", self.what, job_id, error)
                break
            log.warning("%s %s of job %s (attempt %d): no outcome yet; sent again",
                        self.what, what, job_id, number)  # fmt: skip
            wait = min(self.grace_seconds * 2**sends, MAX_RESEND_SECONDS)
            cursor.execute(
                f"UPDATE {self.watch_table} SET sends = sends + 1, due_at = ? WHERE key = ?",
                (now + wait, key),
            )
            sent += 1
        return sent


def _key(job_id: str, what: Any, number: int) -> str:
    return f"{job_id}:{what}:{number}"


def delayed_sender(actor: dramatiq.Actor[..., None]) -> Send:
    """What a scheduler calls to put one message on `actor`'s queue, delayed (Dramatiq
    holds a delayed message in a queue of its own until it is due)."""

    def send(job_id: str, what: Any, number: int, delay_seconds: float) -> None:
        delay = round(delay_seconds * 1000)
        actor.send_with_options(args=(job_id, what, number), delay=delay or None)

    return send
