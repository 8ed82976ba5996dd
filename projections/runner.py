"""Following the event store: the one loop every read model and the dispatcher share.

A follower reads notifications after its tracked position, hands them to its handler
in batches, and writes the new position in the same transaction as the handler's
rows. The position update is a compare-and-set on the position the batch started
from, so two copies of a follower can never both apply a batch; the loser rolls back.

Rebuilding is dropping the follower's tables and position and following from zero:
handlers use only the events' own data (never the clock), so a rebuild reproduces
the read model exactly.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application

from phantomflow.adapters.viewstore import Cursor, ViewStore

log = logging.getLogger(__name__)

STALLED_BACKOFF = 1.0

POSITIONS_TABLE = """
CREATE TABLE IF NOT EXISTS follower_positions (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
)
"""


@dataclass(frozen=True)
class Tracked:
    """A domain event with its position in the application's sequence."""

    position: int
    event: Any


class Follower(ABC):
    """A handler of events, with a name its position is tracked under."""

    name: str
    topics: tuple[str, ...] = ()

    def create_tables(self, cursor: Cursor) -> None:  # noqa: B027 - optional hook
        """Create the follower's own tables, if it has any."""

    def drop_tables(self, cursor: Cursor) -> None:  # noqa: B027 - optional hook
        """Drop the follower's own tables, if it has any."""

    @abstractmethod
    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        """Apply events in order; return how many were handled.

        Returning fewer than given stops the batch there: the position moves past the
        handled ones only, and the rest are offered again on the next round."""


class FollowerRunner:
    def __init__(
        self,
        app: Application[Any],
        store: ViewStore,
        follower: Follower,
        batch_size: int = 2000,
        poll_interval: float = 0.05,
    ) -> None:
        self.app = app
        self.store = store
        self.follower = follower
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # Set when the handler stopped short of a batch (e.g. the broker is down), so
        # the loop backs off instead of retrying at full speed.
        self.stalled = False
        # Set when the last batch ended before the head of the log.
        self.behind = False
        # Set by `wake()`: new events were recorded, look now rather than at the poll.
        self._news = threading.Event()
        with store.transaction() as cursor:
            cursor.execute(POSITIONS_TABLE)
            follower.create_tables(cursor)

    # --- position -----------------------------------------------------------------

    def position(self) -> int:
        with self.store.read() as cursor:
            return self._read_position(cursor)

    def _read_position(self, cursor: Cursor) -> int:
        cursor.execute(
            "SELECT position FROM follower_positions WHERE name = ?", (self.follower.name,)
        )
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _advance(self, cursor: Cursor, start: int, new: int) -> None:
        if new == start:
            return
        cursor.execute(
            "INSERT INTO follower_positions (name, position) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position "
            "WHERE follower_positions.position = ?",
            (self.follower.name, new, start),
        )
        if cursor.rowcount != 1:
            raise PositionMoved(f"{self.follower.name} was advanced by another process")

    # --- following ----------------------------------------------------------------

    def run_once(self) -> int:
        """Handle one batch of new events; return how many were handled."""
        with self.store.transaction() as cursor:
            start = self._read_position(cursor)
            # Everything up to `head` is committed (both recorders assign positions in
            # commit order), so a short batch means there is nothing else to see up to
            # `head`, and the position can skip the events of other topics.
            head = self.app.recorder.max_notification_id() or 0
            if head <= start:
                self.behind = False
                return 0
            notifications = self.app.recorder.select_notifications(
                start=start + 1,
                limit=self.batch_size,
                stop=head,
                topics=self.follower.topics,
            )
            events = [Tracked(n.id, self.app.mapper.to_domain_event(n)) for n in notifications]
            handled = self.follower.handle(cursor, events) if events else 0
            self.stalled = handled < len(events)
            if handled < len(events):
                new = events[handled - 1].position if handled else start
            elif len(events) < self.batch_size:
                new = head
            else:
                new = events[-1].position
            self._advance(cursor, start, new)
            self.behind = new < head
            return handled

    def catch_up(self) -> int:
        """Follow until the head of the log as it was when the batch began."""
        total = self.run_once()
        while self.behind and not self.stalled:
            total += self.run_once()
        return total

    def wake(self) -> None:
        """New events were recorded (in this process): follow them without waiting."""
        self._news.set()

    def run_forever(self, stop: threading.Event) -> None:
        """Follow until `stop` is set; only the lead copy of a follower works."""
        while not stop.is_set():
            with self.store.leadership(self.follower.name) as leading:
                if not leading:
                    stop.wait(1.0)
                    continue
                self._follow(stop)

    def _follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            # Cleared before reading: a wake during the batch means another look.
            self._news.clear()
            try:
                if self.run_once() == 0 and not self.behind:
                    if self.stalled:  # the handler cannot go on (broker down): back off
                        stop.wait(STALLED_BACKOFF)
                    else:
                        self._news.wait(self.poll_interval)
            except PositionMoved:
                continue
            except Exception:
                log.exception("follower %s failed a batch; retrying", self.follower.name)
                stop.wait(1.0)

    def rebuild(self) -> int:
        """Drop the follower's tables and position, then follow from zero."""
        with self.store.transaction() as cursor:
            self.follower.drop_tables(cursor)
            cursor.execute("DELETE FROM follower_positions WHERE name = ?", (self.follower.name,))
            self.follower.create_tables(cursor)
        return self.catch_up()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the follower has passed `position` (read-your-writes)."""
        deadline = time.monotonic() + timeout
        while self.position() < position:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True


class PositionMoved(Exception):
    """Another process advanced this follower first; the batch was rolled back."""


class FollowerThreads:
    """Runs followers in background threads until stopped."""

    def __init__(self, runners: list[FollowerRunner]) -> None:
        self.runners = runners
        self.stop_event = threading.Event()
        self.threads = [
            threading.Thread(
                target=runner.run_forever,
                args=(self.stop_event,),
                name=f"follower-{runner.follower.name}",
                daemon=True,
            )
            for runner in runners
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        """New events were recorded: every follower looks now (see PhantomFlow.on_recorded)."""
        for runner in self.runners:
            runner.wake()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake()
        for thread in self.threads:
            thread.join(timeout=10)
