"""The event hub: one live follower of the event store per API process, fanning job (and
preview) events out to the event streams (`api/sse.py`) that process serves.

The process that renders is not the one holding a stream, so nothing comes from worker
memory. The hub follows the application sequence from its head at start-up (a live
follower, `projections/runner.py`): on PostgreSQL it reads new events as soon as the
event store's own NOTIFY (sent by every insert) wakes it, on SQLite it polls. It
decodes only the events someone is watching, and reads nothing while no stream is open.

A stream first registers with the hub (a `Watcher`), then reads its job's history from
the store (`job_history`, `account_backlog`), then takes live events whose position is
past the last one it sent; registering first means an event is always in one or the
other, and the position check means never in both.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import AggregateEvent
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder

from phantomflow.adapters.eventlog import aggregate_notifications
from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.jobs import RenderJob
from phantomflow.domain.previews import Preview
from phantomflow.projections.job_view import metadata_of
from phantomflow.projections.runner import Follower, FollowerRunner, FollowerThreads, Tracked

log = logging.getLogger(__name__)


def every_event_of(aggregate: type) -> tuple[str, ...]:
    """The topics of every event the aggregate can record, whoever added it."""
    return tuple(
        sorted(
            topics_of(
                *(
                    cls
                    for cls in vars(aggregate).values()
                    if isinstance(cls, type) and issubclass(cls, AggregateEvent)
                )
            )
        )
    )


# The hub follows every event of jobs and of previews (whose streams are a job's, too).
JOB_TOPICS = every_event_of(RenderJob)
PREVIEW_TOPICS = every_event_of(Preview)
# The first event of each: it names the account, and whether it is the sandbox's.
FIRST_EVENTS = (RenderJob.Submitted, Preview.Created)
JOB_ENDINGS = (RenderJob.Completed, RenderJob.Failed, RenderJob.Cancelled)
SUBMITTED_TOPICS = topics_of(RenderJob.Submitted)

HEARTBEAT_SECONDS = 15.0
# A stream whose client reads slower than its events arrive is ended once this many
# events wait for it; the client reconnects with Last-Event-ID and loses nothing.
MAX_PENDING = 1000
# Jobs whose account the hub remembers, for account streams (`GET /api/events`).
OWNER_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Item:
    """A job event and its position, as the hub hands it to streams. On an account
    stream, a job's ending also carries the job's metadata (the job's own stream reads it
    from the job's history)."""

    position: int
    job_id: UUID
    account_id: UUID | None
    event: Any
    sandbox: bool = False  # known when account_id is
    metadata: dict[str, Any] | None = None


class Watcher:
    """One stream's mailbox: the hub pushes, the stream takes (both on the event loop)."""

    __slots__ = ("_items", "_waiter", "closed", "key", "kind", "overflowed", "sandbox")

    def __init__(self, kind: str, key: UUID, sandbox: bool = False) -> None:
        self.kind = kind
        self.key = key
        # An account stream of a sandbox key gets the account's sandbox jobs only, and
        # one of a live key its live jobs only.
        self.sandbox = sandbox
        self._items: list[Item] = []
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        self.closed = False

    def push(self, item: Item) -> None:
        if len(self._items) >= MAX_PENDING:
            self.overflowed = True
        else:
            self._items.append(item)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, timeout: float) -> list[Item]:
        """The events that arrived since the last call; [] after `timeout` without any."""
        if not self._items and not self.closed and not self.overflowed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                pass
            finally:
                self._waiter = None
        items, self._items = self._items, []
        return items


class EventHub(Follower):
    """The one follower of the event store in an API process, fanning out to its streams."""

    name = "sse-hub"
    topics = JOB_TOPICS + PREVIEW_TOPICS

    def __init__(
        self,
        app: PhantomFlow,
        poll_interval: float | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.recorder = app.recorder
        listens = isinstance(self.recorder, PostgresApplicationRecorder)
        # With LISTEN/NOTIFY the poll is only a safety net; SQLite has nothing else.
        self.runner = FollowerRunner(
            app,
            None,
            self,
            batch_size=batch_size,
            poll_interval=poll_interval or (1.0 if listens else 0.05),
        )
        self.heartbeat = heartbeat
        self._jobs: dict[UUID, set[Watcher]] = {}
        self._accounts: dict[UUID, set[Watcher]] = {}
        self._account_watchers = 0
        self._owners: OrderedDict[UUID, tuple[UUID, bool]] = OrderedDict()
        self._owners_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: FollowerThreads | None = None

    # --- life cycle ---------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Follow from the current end of the store (streams read history themselves)."""
        self._loop = loop
        self.runner.start_at_head()
        self._threads = FollowerThreads([self.runner], listen=True)
        self._threads.start()
        # What this process records itself (all of it, embedded on SQLite) reaches the
        # streams at once, not at the next poll (up to 50 ms later on SQLite).
        self.app.on_recorded(self.runner.wake)

    def close_watchers(self) -> None:
        """End every stream (server shutdown); called on the event loop."""
        for watchers in (*self._jobs.values(), *self._accounts.values()):
            for watcher in list(watchers):
                watcher.close()

    def stop(self) -> None:
        if self._threads is not None:
            self._threads.stop()
            self._threads = None

    @property
    def streams(self) -> int:
        """How many streams this process is serving."""
        return sum(len(w) for w in self._jobs.values()) + self._account_watchers

    # --- registration (event loop only) ---------------------------------------------

    def watch_job(self, job_id: UUID) -> Watcher:
        watcher = Watcher("job", job_id)
        self._jobs.setdefault(job_id, set()).add(watcher)
        self.runner.want()
        return watcher

    def watch_account(self, account_id: UUID, sandbox: bool = False) -> Watcher:
        watcher = Watcher("account", account_id, sandbox)
        self._accounts.setdefault(account_id, set()).add(watcher)
        self._account_watchers += 1
        self.runner.want()
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        index = self._jobs if watcher.kind == "job" else self._accounts
        watchers = index.get(watcher.key)
        if watchers is None or watcher not in watchers:
            return
        watchers.discard(watcher)
        if not watchers:
            del index[watcher.key]
        if watcher.kind == "account":
            self._account_watchers -= 1

    def _dispatch(self, items: Sequence[Item]) -> None:
        for item in items:
            for watcher in self._jobs.get(item.job_id, ()):
                watcher.push(item)
            if item.account_id is not None:
                for watcher in self._accounts.get(item.account_id, ()):
                    if watcher.sandbox == item.sandbox:
                        watcher.push(item)

    # --- following (the runner's thread) ----------------------------------------------
    # Reading the watcher indexes from this thread is safe (single dict lookups); a
    # stream registered after its event was passed over here reads it from its history
    # instead, which it loads after registering.

    @property
    def idle(self) -> bool:
        return not self._jobs and self._account_watchers == 0

    def wants(self, notification: Notification) -> bool:
        return self._account_watchers > 0 or notification.originator_id in self._jobs

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        wanted_by_account = self._account_watchers > 0
        items = []
        for tracked in events:
            job_id = tracked.event.originator_id
            owner = self._owner(job_id, tracked.event) if wanted_by_account else None
            if owner is None:
                items.append(Item(tracked.position, job_id, None, tracked.event))
            else:
                metadata = self._metadata(tracked.event)
                items.append(
                    Item(tracked.position, job_id, owner[0], tracked.event, owner[1], metadata)
                )
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._dispatch, items)
        except RuntimeError:  # the event loop is closed: the server is stopping
            return 0
        return len(events)

    def _owner(self, job_id: UUID, event: Any | None = None) -> tuple[UUID, bool] | None:
        """The account a job (or preview) belongs to and whether it is the sandbox's (from
        its first event), remembered."""
        if isinstance(event, FIRST_EVENTS):
            owner: tuple[UUID, bool] | None = (event.account_id, event.sandbox)
        else:
            with self._owners_lock:
                owner = self._owners.get(job_id)
            if owner is None:
                first = next(iter(self.app.events.get(job_id, lte=1)), None)
                if not isinstance(first, FIRST_EVENTS):
                    return None
                owner = (first.account_id, first.sandbox)
        assert owner is not None
        with self._owners_lock:
            self._owners[job_id] = owner
            self._owners.move_to_end(job_id)
            while len(self._owners) > OWNER_CACHE_SIZE:
                self._owners.popitem(last=False)
        return owner

    # --- history, for streams (blocking: call them in a thread) -----------------------

    def job_history(self, job_id: UUID) -> list[Item]:
        """Every event of one job, with positions."""
        items = []
        for notification in aggregate_notifications(self.recorder, job_id):
            event = self.app.mapper.to_domain_event(notification)
            items.append(Item(notification.id, job_id, None, event))
        return items

    def account_backlog(
        self, account_id: UUID, sandbox: bool, after: int, head: int
    ) -> tuple[list[Item], int]:
        """One batch of the account's live or sandbox job events in (after, head]; and
        where it ended."""
        batch = self.recorder.select_notifications(
            start=after, limit=self.runner.batch_size, stop=head, topics=JOB_TOPICS,
            inclusive_of_start=False,
        )  # fmt: skip
        items = []
        for notification in batch:
            job_id = notification.originator_id
            assert isinstance(job_id, UUID)
            event = None
            if notification.topic in SUBMITTED_TOPICS:
                event = self.app.mapper.to_domain_event(notification)
            if self._owner(job_id, event) != (account_id, sandbox):
                continue
            if event is None:
                event = self.app.mapper.to_domain_event(notification)
            items.append(
                Item(notification.id, job_id, account_id, event, sandbox, self._metadata(event))
            )
        return items, (batch[-1].id if batch else head)

    def _metadata(self, event: Any) -> dict[str, Any] | None:
        """The job's metadata, for an event that ends a job (one indexed read of its
        Submitted event); None for any other event."""
        if not isinstance(event, JOB_ENDINGS):
            return None
        submitted = next(iter(self.app.events.get(event.originator_id, lte=1)), None)
        return metadata_of(submitted)
