"""The account's event stream (`GET /api/events`): every job's progress, outcomes and
webhook attempts on one connection that stays open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from phantomflow_client._sse import Resume
from phantomflow_client._streams import follow_async, follow_sync
from phantomflow_client.models import AccountEvent
from phantomflow_client.resources._base import AsyncResource, SyncResource

PATH = "/api/events"


class Events(SyncResource):
    def follow(self, *, last_event_id: int | None = None) -> Iterator[AccountEvent]:
        """Events from now on (or after `last_event_id`); reconnects without loss.
        It never ends by itself: break out of the loop when done."""
        return follow_sync(self._transport, PATH, Resume(last_event_id), closes=False)


class AsyncEvents(AsyncResource):
    def follow(self, *, last_event_id: int | None = None) -> AsyncIterator[AccountEvent]:
        return follow_async(self._transport, PATH, Resume(last_event_id), closes=False)
