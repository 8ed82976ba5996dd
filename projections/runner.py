"""Following the event store: the one loop every follower shares.

A `Follower` is a handler of events with a name and the topics it follows: the read
models, the dispatcher, the webhook scheduler, and each API process's event hub (live
progress). A `FollowerRunner` feeds it: it reads the notifications after the follower's
position, up to the head of the log, in batches; decodes the ones the follower wants;
hands them over; and moves the position past what was handled. Where the position is
kept makes the two kinds of follower:

- tracked (the runner is given a read-model store): the position is a row in that
  store, written in the same transaction as the handler's rows. The update is a
  compare-and-set on the position the batch started from, so two copies of a follower
  can never both apply a batch (the loser rolls back), and only the lead copy runs.
  Rebuilding is dropping the follower's tables and position and following from zero:
  handlers use only the events' own data (never the clock), so a rebuild reproduces
  the read model exactly.
- live (no store): the position is in memory and starts at the head of the log, so the
  follower sees what happens from then on; every process runs its own (the event hub:
  streams read their history themselves).

`FollowerThreads` runs runners in background threads and wakes them when events are
recorded: `wake()` for this process's own saves (see `PhantomFlow.on_recorded`), the
event store's NOTIFY for every process's (PostgreSQL, `listen=True`), and a poll
otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from phantomflow.adapters.viewstore import Cursor, ViewStore

log = logging.getLogger(__name__)

STALLED_BACKOFF = 1.0
# A follower that wants nothing (`Follower.idle`) looks at the head at most this often,
# unless `FollowerRunner.want()` says it wants events again.
IDLE_HEAD_SECONDS = 0.2

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
    """A handler of events, with a name its position is kept under."""

    name: str
    topics: tuple[str, ...] = ()
    # The tables of its own that `create_tables` makes (and a rebuild drops).
    tables: tuple[str, ...] = ()
    # Seconds between calls of `due`, for a follower with work that falls due with time
    # rather than with events (the dispatcher's expired leases); None for none.
    due_interval: float | None = None

    def create_tables(self, cursor: Cursor) -> None:  # noqa: B027 - optional hook
        """Create the follower's own tables, if it has any."""

    def drop_tables(self, cursor: Cursor) -> None:
        """Drop the follower's own tables (`tables`), for a rebuild."""
        for table in self.tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")

    def wants(self, notification: Notification) -> bool:
        """Whether to decode and hand over this event of the followed topics; one not
        wanted is passed over as handled (decoding is most of a batch's cost)."""
        return True

    @property
    def idle(self) -> bool:
        """True while the follower wants no events at all (a hub with no stream open):
        the runner then moves its position to the head without reading."""
        return False

    def due(self, cursor: Cursor) -> int:
        """Do the work that has fallen due by now; return how much was done. The lead
        copy calls it every `due_interval` seconds, in a transaction of its store."""
        return 0

    @abstractmethod
    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        """Apply events in order; return how many were handled.

        `cursor` is the tracked follower's transaction in its read-model store (a live
        follower has none: any use of it raises). Returning fewer than given stops the
        batch there: the position moves past the handled ones only, and the rest are
        offered again on the next round."""


class PositionMoved(Exception):
    """Another process advanced this follower first; the batch was rolled back."""


class _Positions(ABC):
    """Where a follower's position is kept, and the transaction it moves in."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Cursor]: ...

    @abstractmethod
    def read(self, cursor: Cursor) -> int: ...

    @abstractmethod
    def advance(self, cursor: Cursor, start: int, new: int) -> None: ...

    @abstractmethod
    def leadership(self) -> contextlib.AbstractContextManager[bool]: ...


class _TrackedPositions(_Positions):
    def __init__(self, store: ViewStore, follower: Follower) -> None:
        self.store = store
        self.name = follower.name
        with store.transaction() as cursor:
            cursor.execute(POSITIONS_TABLE)
            follower.create_tables(cursor)

    def transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        return self.store.transaction()

    def read(self, cursor: Cursor) -> int:
        cursor.execute("SELECT position FROM follower_positions WHERE name = ?", (self.name,))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def advance(self, cursor: Cursor, start: int, new: int) -> None:
        if new == start:
            return
        cursor.execute(
            "INSERT INTO follower_positions (name, position) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position "
            "WHERE follower_positions.position = ?",
            (self.name, new, start),
        )
        if cursor.rowcount != 1:
            raise PositionMoved(f"{self.name} was advanced by another process")

    def leadership(self) -> contextlib.AbstractContextManager[bool]:
        return self.store.leadership(self.name)


class _NoStore:
    """The cursor a live follower is handed: it has no store to write to."""

    rowcount = 0

    def _refuse(self, *_: Any) -> Any:
        raise TypeError("a live follower has no read-model store")

    execute = executemany = fetchone = fetchall = _refuse


class _LivePosition(_Positions):
    def __init__(self) -> None:
        self.value = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Cursor]:
        yield _NoStore()

    def read(self, cursor: Cursor) -> int:
        return self.value

    def advance(self, cursor: Cursor, start: int, new: int) -> None:
        self.value = new

    @contextlib.contextmanager
    def leadership(self) -> Iterator[bool]:
        yield True  # every process follows for its own streams


class FollowerRunner:
    def __init__(
        self,
        app: Application[Any],
        store: ViewStore | None,
        follower: Follower,
        batch_size: int = 2000,
        poll_interval: float = 0.05,
    ) -> None:
        """A tracked follower with a read-model `store`; a live one without (None)."""
        self.app = app
        self.follower = follower
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.positions: _Positions = (
            _LivePosition() if store is None else _TrackedPositions(store, follower)
        )
        self.store = store
        # Set when the handler stopped short of a batch (e.g. the broker is down), so
        # the loop backs off instead of retrying at full speed.
        self.stalled = False
        # Set when the last batch ended before the head of the log.
        self.behind = False
        # Set by `wake()`: new events were recorded, look now rather than at the poll.
        self._news = threading.Event()
        # Set by `want()`: an idle follower wants events again.
        self._wanted = threading.Event()
        self._due_at = 0.0  # when the follower's time-based work is next looked at

    # --- position -----------------------------------------------------------------

    def position(self) -> int:
        with self.positions.transaction() as cursor:
            return self.positions.read(cursor)

    def start_at_head(self) -> None:
        """A live follower: follow from the log's head as it is now."""
        assert isinstance(self.positions, _LivePosition), "a tracked follower keeps its place"
        self.positions.value = self._head()

    def _head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    # --- following ----------------------------------------------------------------

    def run_once(self) -> int:
        """Handle one batch of new events; return how many were handled."""
        with self.positions.transaction() as cursor:
            start = self.positions.read(cursor)
            # Everything up to `head` is committed (both recorders assign positions in
            # commit order), so a short batch means there is nothing else to see up to
            # `head`, and the position can skip the events of other topics.
            head = self._head()
            if head <= start:
                self.behind = False
                return 0
            notifications = self.app.recorder.select_notifications(
                start=start + 1,
                limit=self.batch_size,
                stop=head,
                topics=self.follower.topics,
            )
            events = [
                Tracked(n.id, self.app.mapper.to_domain_event(n))
                for n in notifications
                if self.follower.wants(n)
            ]
            handled = self.follower.handle(cursor, events) if events else 0
            self.stalled = handled < len(events)
            if handled < len(events):
                new = events[handled - 1].position if handled else start
            elif len(notifications) < self.batch_size:
                new = head
            else:
                new = notifications[-1].id
            self.positions.advance(cursor, start, new)
            self.behind = new < head
            return handled

    def pass_by(self) -> None:
        """An idle follower: move to the head without reading. The head is read before
        the second look at `idle`: whatever made the follower want events after that
        look (a stream opening) reads what is past this head itself, so nothing falls
        between the two."""
        with self.positions.transaction() as cursor:
            start = self.positions.read(cursor)
            head = self._head()
            if self.follower.idle and head > start:
                self.positions.advance(cursor, start, head)
            self.behind = False

    def run_due(self) -> int:
        """The follower's work that has fallen due by now (see `Follower.due`)."""
        with self.positions.transaction() as cursor:
            return self.follower.due(cursor)

    def _maybe_run_due(self) -> None:
        interval = self.follower.due_interval
        if interval is not None and time.monotonic() >= self._due_at:
            self._due_at = time.monotonic() + interval
            self.run_due()

    def catch_up(self) -> int:
        """Follow until the head of the log as it was when the batch began."""
        total = self.run_once()
        while self.behind and not self.stalled:
            total += self.run_once()
        return total

    def wake(self) -> None:
        """New events were recorded: follow them without waiting for the poll."""
        self._news.set()

    def want(self) -> None:
        """An idle follower wants events again: look at once."""
        self._wanted.set()
        self._news.set()

    def run_forever(self, stop: threading.Event) -> None:
        """Follow until `stop` is set; only the lead copy of a tracked follower works."""
        while not stop.is_set():
            with self.positions.leadership() as leading:
                if not leading:
                    stop.wait(1.0)
                    continue
                self._follow(stop)

    def _follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            # Cleared before reading: a wake during the batch means another look.
            self._news.clear()
            try:
                self._maybe_run_due()
                if self.follower.idle:
                    self._wanted.clear()
                    self.pass_by()
                    # Every insert may wake an idle follower: reading the head at most
                    # every IDLE_HEAD_SECONDS is enough (one that wants events again
                    # looks at once, from a slightly older position: more to pass
                    # over, nothing skipped).
                    self._wanted.wait(IDLE_HEAD_SECONDS)
                    self._news.wait(self.poll_interval)
                elif self.run_once() == 0 and not self.behind:
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
        if self.store is None:
            raise TypeError("a live follower has nothing to rebuild")
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

    def reach(self, position: int, patience: float) -> bool:
        """Read-your-writes, whatever the machine's load: return once the follower has
        passed `position`. The lead copy (a thread here, or the projections process) is
        given `patience` seconds to get there; then this thread follows up to it itself
        (safe beside the lead: positions are compare-and-set), so a slow or stopped lead
        makes the answer later, never stale. False only if the follower cannot go on."""
        if self.wait_for(position, patience):
            return True
        while (before := self.position()) < position:
            try:
                self.run_once()
            except PositionMoved:
                continue  # the lead moved first: look again
            if self.position() == before:
                return False  # its handler stopped short (see `stalled`)
        return True


class FollowerThreads:
    """Runs followers of one application in background threads until stopped.

    With `listen`, the followers also wake whenever the event store announces an insert
    (PostgreSQL's NOTIFY, which every insert of every process sends), instead of at
    their next poll: for followers that must see other processes' events at once."""

    def __init__(self, runners: list[FollowerRunner], listen: bool = False) -> None:
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
        recorder = runners[0].app.recorder if runners else None
        if listen and isinstance(recorder, PostgresApplicationRecorder):
            self.threads.append(
                threading.Thread(
                    target=self._listen, args=(recorder,), name="follower-listen", daemon=True
                )
            )

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        """New events were recorded: every follower looks now (see PhantomFlow.on_recorded)."""
        for runner in self.runners:
            runner.wake()

    def stop(self) -> None:
        self.stop_event.set()
        for runner in self.runners:
            runner.want()  # out of any wait at once
        for thread in self.threads:
            thread.join(timeout=10)

    def _listen(self, recorder: PostgresApplicationRecorder) -> None:
        while not self.stop_event.is_set():
            try:
                with recorder.datastore.get_connection() as conn:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))
                    self.wake()  # anything recorded while (re)connecting
                    while not self.stop_event.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self.wake()
                    conn.execute("UNLISTEN *")
            except Exception:
                log.warning("lost the event store's LISTEN connection; reconnecting", exc_info=True)
                self.stop_event.wait(1.0)
