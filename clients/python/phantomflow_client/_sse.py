"""Server-Sent Events: the wire format, and what a follower remembers across reconnects.

The decoder follows the HTML standard's parsing rules (fields `id`, `event`, `data`,
`retry`; comments; a blank line dispatches). `Resume` is the follower's memory: the id
of the last event handed to the caller, sent back as `Last-Event-ID` on every reconnect,
and the guard that never hands the same event twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from phantomflow_client.models import JOB_EVENTS, Event, Model, event_from_sse


@dataclass(frozen=True)
class Message:
    event: str
    data: str
    id: str | None


@dataclass
class Decoder:
    """Feed it lines (without their line ending); it returns a message at each blank line."""

    event: str = ""
    data: list[str] = field(default_factory=list)
    last_id: str | None = None
    retry_ms: int | None = None

    def line(self, line: str) -> Message | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Message | None:
        if not self.data:
            self.event = ""
            return None
        message = Message(event=self.event or "message", data="\n".join(self.data), id=self.last_id)
        self.event, self.data = "", []
        return message


@dataclass
class Resume:
    """Where a follower is: the last event it passed on, and whether the stream has ended."""

    last_id: int | None = None
    ended: bool = False
    kinds: dict[str, type[Model]] = field(default_factory=lambda: JOB_EVENTS)  # by event name

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = str(self.last_id)
        return headers

    def line(self, decoder: Decoder, line: str, closes: bool) -> Event | None:
        """The event that `line` completes, if it is one to hand on."""
        message = decoder.line(line)
        return self.accept(message, closes) if message is not None else None

    def accept(self, message: Message, closes: bool) -> Event | None:
        """The typed event to hand on, or None for one already handed on or unknown."""
        try:
            event_id = int(message.id) if message.id is not None else None
        except ValueError:
            event_id = None
        if event_id is None or (self.last_id is not None and event_id <= self.last_id):
            return None
        self.last_id = event_id
        data = json.loads(message.data)
        data = data if isinstance(data, dict) else {}
        event = event_from_sse(message.event, event_id, data, self.kinds)
        if event is not None and closes and event.final:
            self.ended = True
        return event
