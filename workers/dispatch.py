"""The dispatcher: follows `Submitted` events and puts each job on the render queue.

Submissions never talk to the broker: a request only records events. This follower
sends the queue message afterwards, so a submission succeeds even when Redis is down,
and the job is dispatched as soon as Redis is back (the position only moves past
jobs that were sent). A crash between sending and recording the position sends a job
twice; the render actor ignores jobs that are already taken or finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from phantomflow.adapters.topics import topics_of
from phantomflow.adapters.viewstore import Cursor
from phantomflow.domain.jobs import RenderJob
from phantomflow.projections.runner import Follower, Tracked

log = logging.getLogger(__name__)


class Dispatcher(Follower):
    name = "dispatcher"
    topics = topics_of(RenderJob.Submitted)

    def __init__(self, send: Callable[[str], object]) -> None:
        self.send = send

    def handle(self, cursor: Cursor, events: Sequence[Tracked]) -> int:
        for handled, tracked in enumerate(events):
            job_id = str(tracked.event.originator_id)
            try:
                self.send(job_id)
            except Exception as error:  # the broker is unreachable: try again later
                log.warning("could not dispatch job %s yet: %s", job_id, error)
                return handled
        return len(events)
