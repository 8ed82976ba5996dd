"""Live progress over Server-Sent Events, fed by the event store and resumable without loss.

`GET /api/jobs/{job_id}/progress` streams one job (the contract's `progress`, `complete`
and `error` events) and closes after the last; `GET /api/events` streams every job
event of the account and stays open. Every event's `id:` is its position in the event
store's application sequence, so a client that reconnects with `Last-Event-ID` gets the
events after that position: exactly the ones it missed, none twice.

The process that renders is not the one holding the stream, so nothing comes from
worker memory. One `EventHub` per API process follows the application sequence: on
PostgreSQL it reads new events as soon as the event store's own NOTIFY (sent by every
insert) wakes it, on SQLite it polls. It decodes only the events someone is watching
and fans them out to every stream of this process. A stream first registers with the
hub, then reads the job's history from the store, then sends live events whose
position is past the last one sent; registering first means an event is always in
one or the other, and the position check means never in both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiohttp import web
from aiohttp.web_log import AccessLogger
from eventsourcing.domain import AggregateEvent
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from phantomflow.adapters.eventlog import aggregate_notifications
from phantomflow.adapters.topics import topics_of
from phantomflow.api.errors import invalid_request, not_found
from phantomflow.api.routes import public_base
from phantomflow.api.services import PRINCIPAL, REQUEST_ID, Services, services_of
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.jobs import RenderJob
from phantomflow.projections.jobs import iso

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Every event a job can record, whoever added it: the hub follows them all.
JOB_TOPICS = tuple(
    sorted(
        topics_of(
            *(
                cls
                for cls in vars(RenderJob).values()
                if isinstance(cls, type) and issubclass(cls, AggregateEvent)
            )
        )
    )
)
SUBMITTED_TOPICS = topics_of(RenderJob.Submitted)

# Events that end a job's stream.
FINAL_EVENTS = ("complete", "error")

HEARTBEAT_SECONDS = 15.0
# With no stream open, the hub reads the store's head at most this often.
IDLE_HEAD_SECONDS = 0.2
# A stream whose client reads slower than its events arrive is ended once this many
# events wait for it; the client reconnects with Last-Event-ID and loses nothing.
MAX_PENDING = 1000
# Jobs whose account the hub remembers, for account streams (`GET /api/events`).
OWNER_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Item:
    """A job event and its position, as the hub hands it to streams."""

    position: int
    job_id: UUID
    account_id: UUID | None
    event: Any


class Watcher:
    """One stream's mailbox in the hub: events arrive here from the event loop."""

    __slots__ = ("_items", "_waiter", "closed", "key", "kind", "overflowed")

    def __init__(self, kind: str, key: UUID) -> None:
        self.kind = kind
        self.key = key
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


class EventHub:
    """The one follower of the event store in an API process, fanning out to its streams."""

    def __init__(
        self,
        app: PhantomFlow,
        poll_interval: float | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.recorder = app.recorder
        self.listens = isinstance(self.recorder, PostgresApplicationRecorder)
        # With LISTEN/NOTIFY the poll is only a safety net; SQLite has nothing else.
        self.poll_interval = poll_interval or (1.0 if self.listens else 0.05)
        self.heartbeat = heartbeat
        self.batch_size = batch_size
        self.position = 0
        self._jobs: dict[UUID, set[Watcher]] = {}
        self._accounts: dict[UUID, set[Watcher]] = {}
        self._account_watchers = 0
        self._owners: OrderedDict[UUID, UUID] = OrderedDict()
        self._owners_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._registered = threading.Event()  # a stream opened
        self._threads: list[threading.Thread] = []

    # --- life cycle ---------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Follow from the current end of the store (streams read history themselves)."""
        self._loop = loop
        self.position = self.recorder.max_notification_id() or 0
        self._threads = [
            threading.Thread(target=self._pull, args=(self.position,), name="sse-hub", daemon=True)
        ]
        if self.listens:
            self._threads.append(
                threading.Thread(target=self._listen, name="sse-hub-listen", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def close_watchers(self) -> None:
        """End every stream (server shutdown); called on the event loop."""
        for watchers in (*self._jobs.values(), *self._accounts.values()):
            for watcher in list(watchers):
                watcher.close()

    def stop(self) -> None:
        self._stop.set()
        self._registered.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    @property
    def streams(self) -> int:
        """How many streams this process is serving."""
        return sum(len(w) for w in self._jobs.values()) + self._account_watchers

    # --- registration (event loop only) ---------------------------------------------

    def watch_job(self, job_id: UUID) -> Watcher:
        watcher = Watcher("job", job_id)
        self._jobs.setdefault(job_id, set()).add(watcher)
        self._registered.set()
        self._wake.set()
        return watcher

    def watch_account(self, account_id: UUID) -> Watcher:
        watcher = Watcher("account", account_id)
        self._accounts.setdefault(account_id, set()).add(watcher)
        self._account_watchers += 1
        self._registered.set()
        self._wake.set()
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

    def _dispatch(self, items: Sequence[Item], position: int) -> None:
        self.position = position
        for item in items:
            for watcher in self._jobs.get(item.job_id, ()):
                watcher.push(item)
            if item.account_id is not None:
                for watcher in self._accounts.get(item.account_id, ()):
                    watcher.push(item)

    # --- reading the store (threads) ------------------------------------------------

    def _pull(self, start: int) -> None:
        last = start
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self._idle():
                    self._registered.clear()
                    last = self._skip_to_head(last)
                    # Under load every insert wakes the hub: reading the head at most
                    # every IDLE_HEAD_SECONDS is enough (a stream that opens meanwhile
                    # wakes the hub at once, which then reads from a slightly older
                    # position: more to filter, nothing skipped).
                    self._registered.wait(IDLE_HEAD_SECONDS)
                    self._wake.wait(self.poll_interval)
                    continue
                batch = self.recorder.select_notifications(
                    start=last, limit=self.batch_size, topics=JOB_TOPICS, inclusive_of_start=False
                )
                items = self._decode(batch)
            except Exception:
                log.exception("the event hub could not read the event store; retrying")
                self._stop.wait(1.0)
                continue
            if batch:
                last = batch[-1].id
                if not self._hand_over(items, last):
                    return
                if len(batch) == self.batch_size:
                    continue
            self._wake.wait(self.poll_interval)

    def _idle(self) -> bool:
        return not self._jobs and self._account_watchers == 0

    def _skip_to_head(self, last: int) -> int:
        """With no stream open, move past the store's head instead of reading events
        nobody wants (every insert wakes every API process). The head is read before
        the second look at the streams: a stream registered after that look reads its
        history past this head itself, so nothing falls between the two."""
        head = self.recorder.max_notification_id() or 0
        return max(last, head) if self._idle() else last

    def _hand_over(self, items: list[Item], position: int) -> bool:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._dispatch, items, position)
        except RuntimeError:  # the event loop is closed: the server has stopped
            return False
        return True

    def _decode(self, batch: Sequence[Notification]) -> list[Item]:
        # Reading the watcher indexes from this thread is safe (single dict lookups);
        # a stream registered after its event was skipped here reads it from its
        # history instead, which it loads after registering.
        items = []
        for notification in batch:
            job_id = notification.originator_id
            assert isinstance(job_id, UUID)
            wanted_by_account = self._account_watchers > 0
            if job_id not in self._jobs and not wanted_by_account:
                continue
            event = self.app.mapper.to_domain_event(notification)
            account_id = self._owner(job_id, event) if wanted_by_account else None
            items.append(Item(notification.id, job_id, account_id, event))
        return items

    def _listen(self) -> None:
        """Wake the puller whenever the event store announces an insert (PostgreSQL)."""
        recorder = self.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        while not self._stop.is_set():
            try:
                with recorder.datastore.get_connection() as conn:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))
                    self._wake.set()  # anything recorded while (re)connecting
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._wake.set()
                    conn.execute("UNLISTEN *")
            except Exception:
                log.warning("the event hub lost its LISTEN connection; reconnecting", exc_info=True)
                self._stop.wait(1.0)

    def _owner(self, job_id: UUID, event: Any | None = None) -> UUID | None:
        """The account a job belongs to (from its Submitted event), remembered."""
        if isinstance(event, RenderJob.Submitted):
            owner: UUID | None = event.account_id
        else:
            with self._owners_lock:
                owner = self._owners.get(job_id)
            if owner is None:
                submitted = next(iter(self.app.events.get(job_id, lte=1)), None)
                if not isinstance(submitted, RenderJob.Submitted):
                    return None
                owner = submitted.account_id
        assert owner is not None
        with self._owners_lock:
            self._owners[job_id] = owner
            self._owners.move_to_end(job_id)
            while len(self._owners) > OWNER_CACHE_SIZE:
                self._owners.popitem(last=False)
        return owner

    def job_history(self, job_id: UUID) -> list[Item]:
        """Every event of one job, with positions (blocking: call it in a thread)."""
        items = []
        for notification in aggregate_notifications(self.recorder, job_id):
            event = self.app.mapper.to_domain_event(notification)
            items.append(Item(notification.id, job_id, None, event))
        return items

    def account_backlog(self, account_id: UUID, after: int, head: int) -> tuple[list[Item], int]:
        """One batch of the account's job events in (after, head]; and where it ended
        (blocking: call it in a thread)."""
        batch = self.recorder.select_notifications(
            start=after, limit=self.batch_size, stop=head, topics=JOB_TOPICS,
            inclusive_of_start=False,
        )  # fmt: skip
        items = []
        for notification in batch:
            job_id = notification.originator_id
            assert isinstance(job_id, UUID)
            event = None
            if notification.topic in SUBMITTED_TOPICS:
                event = self.app.mapper.to_domain_event(notification)
            if self._owner(job_id, event) != account_id:
                continue
            if event is None:
                event = self.app.mapper.to_domain_event(notification)
            items.append(Item(notification.id, job_id, account_id, event))
        return items, (batch[-1].id if batch else head)


HUB = web.AppKey("event_hub", EventHub)


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access log without the API keys that `apiKey` query parameters carry."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request is not None and "apiKey" in request.query:
            request = request.clone(rel_url=request.rel_url.update_query(apiKey="REDACTED"))
        super().log(request, response, time)


def install(app: web.Application, services: Services) -> EventHub:
    """Add the SSE routes and one event hub to `app`, started and stopped with it."""
    hub = EventHub(services.runtime.app)
    app[HUB] = hub
    app.add_routes(routes)

    async def start(_: web.Application) -> None:
        hub.start(asyncio.get_running_loop())

    async def end_streams(_: web.Application) -> None:
        hub.close_watchers()

    async def stop(_: web.Application) -> None:
        hub.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(stop)
    return hub


# --- the events as clients see them ---------------------------------------------------


def progress_event(event: Any, base: str) -> tuple[str, dict[str, Any]] | None:
    """A job event as the contract's SSE event (name, data), or None if it has none."""
    if isinstance(event, RenderJob.Submitted):
        return "progress", {"progress": 0, "stage": "queued", "timestamp": iso(event.timestamp)}
    if isinstance(event, RenderJob.Started):
        return "progress", {"progress": 0, "stage": "starting", "timestamp": iso(event.timestamp)}
    if isinstance(event, RenderJob.ProgressReported):
        return "progress", {
            "progress": event.progress,
            "stage": event.stage,
            "timestamp": iso(event.timestamp),
        }
    if isinstance(event, RenderJob.Completed):
        return "complete", {
            "outputUri": f"{base}/outputs/{event.output_location}",
            "creditsUsed": event.credits_used,
            "durationSeconds": event.duration_seconds,
            "fileSizeBytes": event.file_size_bytes,
        }
    if isinstance(event, RenderJob.Failed):
        return "error", {"code": event.code, "message": event.message}
    if isinstance(event, RenderJob.Cancelled):
        return "error", {"code": "CANCELLED", "message": event.reason}
    return None


def account_event(event: Any, base: str) -> tuple[str, dict[str, Any]] | None:
    """A job event on the account stream: the same events with `jobId` and `timestamp`,
    and `webhook` for each delivery attempt."""
    job_id = str(event.originator_id)
    if isinstance(event, RenderJob.WebhookAttempted):
        return "webhook", {
            "jobId": job_id,
            "attempt": event.attempt,
            "trigger": event.trigger,
            "statusCode": event.status_code,
            "error": event.error,
            "durationMs": event.duration_ms,
            "delivered": event.delivered,
            "timestamp": iso(event.timestamp),
        }
    mapped = progress_event(event, base)
    if mapped is None:
        return None
    name, data = mapped
    return name, {"jobId": job_id, **data, "timestamp": iso(event.timestamp)}


def frame(position: int, name: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"))
    return f"id: {position}\nevent: {name}\ndata: {payload}\n\n".encode()


HEARTBEAT = b": keep-alive\n\n"


# --- routes -----------------------------------------------------------------------------


# What a Last-Event-ID may be: ASCII digits, few enough for a 64-bit position. Empty is
# no id at all, as in the SSE standard (an EventSource never sends it empty).
LAST_EVENT_ID_PATTERN = re.compile(r"[0-9]{0,18}")


def last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if not LAST_EVENT_ID_PATTERN.fullmatch(raw):
        raise invalid_request(
            "Last-Event-ID must be the id of an event this API sent", path="Last-Event-ID"
        )
    return int(raw) if raw else None


async def open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass events through as they come
            "X-Request-Id": request[REQUEST_ID],
        }
    )
    await response.prepare(request)
    return response


async def follow(
    response: web.StreamResponse,
    watcher: Watcher,
    last: int,
    heartbeat: float,
    to_sse: Callable[[Any], tuple[str, dict[str, Any]] | None],
    closes: bool,
) -> None:
    """Send live events past position `last` until a final event (if `closes`), the
    client leaves (the write fails or the handler is cancelled), or the server stops."""
    while True:
        items = await watcher.next(heartbeat)
        if not items and not watcher.closed and not watcher.overflowed:
            await response.write(HEARTBEAT)
            continue
        for item in items:
            if item.position <= last:
                continue
            last = item.position
            mapped = to_sse(item.event)
            if mapped is None:
                continue
            await response.write(frame(item.position, *mapped))
            if closes and mapped[0] in FINAL_EVENTS:
                return
        if watcher.closed or watcher.overflowed:
            return


@routes.get("/api/jobs/{job_id}/progress")
async def job_progress(request: web.Request) -> web.StreamResponse:
    principal = request[PRINCIPAL]
    raw = request.match_info["job_id"]
    try:
        job_id = UUID(raw)
    except ValueError:
        raise not_found(f"No job {raw}.") from None
    after = last_event_id(request)
    services = services_of(request)
    hub = request.app[HUB]
    base = public_base(request)
    watcher = hub.watch_job(job_id)  # before reading the history: see the module doc
    try:
        history = await services.call(hub.job_history, job_id)
        if (
            not history
            or not isinstance(history[0].event, RenderJob.Submitted)
            or history[0].event.account_id != principal.account_id
        ):
            raise not_found(f"No job {job_id}.")
        sent: list[tuple[int, str, dict[str, Any]]] = []
        for item in history:
            mapped = progress_event(item.event, base)
            if mapped is not None:
                sent.append((item.position, *mapped))
        final = next((e for e in sent if e[1] in FINAL_EVENTS), None)
        if after is None:
            if final is not None:
                sent = [final]  # a job that has ended: its outcome, at once
        elif final is not None and after >= final[0]:
            # The client has seen the end. 204 tells an EventSource to stop reconnecting.
            return web.Response(status=204)
        else:
            sent = [e for e in sent if e[0] > after]
        last = max(history[-1].position, after or 0)
        response = await open_stream(request)
        try:
            for event in sent:
                await response.write(frame(*event))
            if final is None:
                await follow(
                    response,
                    watcher,
                    last,
                    hub.heartbeat,
                    lambda event: progress_event(event, base),
                    closes=True,
                )
        except ConnectionResetError:
            pass  # the client left
        return response
    finally:
        hub.unwatch(watcher)


@routes.get("/api/events")
async def account_events(request: web.Request) -> web.StreamResponse:
    principal = request[PRINCIPAL]
    after = last_event_id(request)
    services = services_of(request)
    hub = request.app[HUB]
    base = public_base(request)
    account_id = principal.account_id
    watcher = hub.watch_account(account_id)
    try:
        response = await open_stream(request)
        last = 0
        try:
            if after is not None:
                # Everything of the account's jobs after the client's last event, read
                # from the store in batches, then live events past the store's head.
                head = await services.call(hub.recorder.max_notification_id) or 0
                position = after
                while position < head:
                    items, position = await services.call(
                        hub.account_backlog, account_id, position, head
                    )
                    for item in items:
                        mapped = account_event(item.event, base)
                        if mapped is not None:
                            await response.write(frame(item.position, *mapped))
                last = max(after, head)
            else:
                await response.write(HEARTBEAT)  # headers and a first byte, at once
            await follow(
                response,
                watcher,
                last,
                hub.heartbeat,
                lambda event: account_event(event, base),
                closes=False,
            )
        except ConnectionResetError:
            pass
        return response
    finally:
        hub.unwatch(watcher)
