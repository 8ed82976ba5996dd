"""What the webhook and export schedulers share: following the event log and turning
events into queue messages, some of them delayed.

A scheduler's position moves only past events whose messages were sent, so nothing is
lost while the broker (or the event store) is unreachable: the event that could not be
scheduled is offered again on the next round.
"""

from __future__ import annotations

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


class Scheduler(Follower):
    """Calls `schedule` for each followed event, in order, stopping at the first the
    broker (or the store) refuses."""

    # What is scheduled, in logs ("webhook", "exports").
    what: str

    def __init__(
        self,
        app: PhantomFlow,
        send: Send,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.send = send
        self.clock = clock

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        for handled, tracked in enumerate(events):
            try:
                self.schedule(tracked.event)
            except Exception as error:  # the broker (or the store) is unreachable
                log.warning("could not schedule %s of job %s yet: %s",
                            self.what, tracked.event.originator_id, error)  # fmt: skip
                return handled
        return len(events)

    @abstractmethod
    def schedule(self, event: Any) -> None:
        """Send what `event` calls for (perhaps nothing)."""

    def submitted(self, event: Any) -> Any:
        """The job's first event (`Submitted`), which holds its webhook and exports."""
        return next(iter(self.app.events.get(event.originator_id, lte=1)), None)

    def delay_until(self, moment: datetime) -> float:
        """Seconds from now until `moment`; 0 if it has passed."""
        return max(0.0, (moment - self.clock()).total_seconds())


def delayed_sender(actor: dramatiq.Actor[..., None]) -> Send:
    """What a scheduler calls to put one message on `actor`'s queue, delayed (Dramatiq
    holds a delayed message in a queue of its own until it is due)."""

    def send(job_id: str, what: Any, number: int, delay_seconds: float) -> None:
        delay = round(delay_seconds * 1000)
        actor.send_with_options(args=(job_id, what, number), delay=delay or None)

    return send
