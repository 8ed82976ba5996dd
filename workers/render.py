"""Rendering one job: take it, render it with progress, record the outcome.

Safe to run twice for the same job (a message redelivered, a job dispatched twice):
a finished job is left alone, and only one worker can record `Started` for a queued
job (the other meets a version conflict).

Each attempt holds a lease (`PHANTOMFLOW_RENDER_LEASE_SECONDS`, recorded with
`Started`): it shows a sign of life at least that often, a progress report or, between
them, a `LeaseRenewed` from a keep-alive thread. A worker that dies stops both; once its
lease has run out the dispatcher sends the job again (workers/dispatch.py) and the next
worker takes it over as a new attempt. An attempt that has been taken over can never
complete, fail or settle the job (the domain checks the attempt number), and it stops
at its next report.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from phantomflow.adapters.pg_health import UNAVAILABLE_ERRORS
from phantomflow.adapters.render import FFmpegRenderer, RenderFailed
from phantomflow.adapters.samples import SANDBOX_SAMPLE, SANDBOX_SAMPLE_SECONDS
from phantomflow.adapters.storage import Storage, poster_key, render_key
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.errors import IllegalJobTransition, JobNotFound
from phantomflow.domain.jobs import CANCELLED, FAILED, PROCESSING, RenderJob

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long each stage of a sandbox job takes.
SANDBOX_STEP_SECONDS = 0.05
# A message for a job whose lease runs out within this many seconds is retried soon
# (a clock a little behind the dispatcher's, a message just before expiry); one for a
# job whose holder is well within its lease is dropped: the dispatcher sends the job
# again if that holder goes quiet.
BUSY_RETRY_WINDOW_SECONDS = 10.0
# The keep-alive thread renews the lease when this share of it has passed without a
# sign of life, so two renewals can be lost before another worker may take over.
RENEW_SHARE = 1 / 3


class JobBusy(Exception):
    """Another worker holds the job's lease; try again later (it may have died)."""


class JobAbandoned(Exception):
    """The job ended or changed hands while this worker was rendering it."""


@dataclass
class RenderService:
    app: PhantomFlow
    renderer: FFmpegRenderer
    storage: Storage
    lease_seconds: float = 300.0
    worker_name: str = ""

    def __post_init__(self) -> None:
        if not self.worker_name:
            # Host and process id first, so an operator (or a drill) can tell from a
            # job's `worker` which process holds it.
            self.worker_name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def run(self, job_id: UUID) -> str:
        """Render the job if it is ours to render; return what happened, for logs."""
        try:
            job = self.app.get_job(job_id)
        except JobNotFound:
            log.error("render message for unknown job %s dropped", job_id)
            return "unknown job"
        if job.is_finished:
            return "already finished"
        try:
            self.app.start_job(job, self.worker_name, self.lease_seconds)
        except IllegalJobTransition as busy:
            if job.status != PROCESSING:
                return "already finished"
            left = job.lease_expires_at(self.lease_seconds) - datetime.now(UTC)
            if left.total_seconds() <= BUSY_RETRY_WINDOW_SECONDS:
                raise JobBusy(str(busy)) from None
            return "held by another worker"
        except RecordConflictError:
            return "taken by another worker"
        attempt = RenderAttempt(self.app, job, self.worker_name, self.lease_seconds)
        with attempt.kept_alive():
            if job.sandbox:
                return self._simulate(attempt)
            return self._render(attempt)

    def _simulate(self, attempt: RenderAttempt) -> str:
        """A sandbox job: the same statuses, stages and events as a render, in a moment,
        without FFmpeg, ending with the bundled sample video."""
        job = attempt.job
        scenes = len(job.script["scenes"])
        try:
            for scene in range(1, scenes + 1):
                attempt(0.95 * (scene - 1) / scenes, f"rendering_scene_{scene}")
                time.sleep(SANDBOX_STEP_SECONDS)
            attempt(0.95, "stitching")
        except JobAbandoned:
            return "abandoned"
        if not attempt.is_current():
            return "superseded"
        location = self.storage.put_file(render_key(job.id), SANDBOX_SAMPLE).key
        return self._complete(
            attempt, location, SANDBOX_SAMPLE_SECONDS, SANDBOX_SAMPLE.stat().st_size, None
        )

    def _render(self, attempt: RenderAttempt) -> str:
        job = attempt.job
        with tempfile.TemporaryDirectory(prefix=f"render-{job.id}-") as scratch:
            work_dir = Path(scratch)
            try:
                result = self.renderer.render(
                    self.app.script_of(job),
                    work_dir / "output.mp4",
                    attempt,
                    work_dir,
                )
            except RenderFailed as failure:
                return self._record_failure(attempt, failure.message)
            except JobAbandoned:
                return "abandoned"
            except Exception:
                reference = uuid.uuid4().hex[:12]
                log.exception("render of job %s crashed (reference %s)", job.id, reference)
                return self._record_failure(
                    attempt, f"internal error while rendering (reference {reference})"
                )
            # An attempt taken over while it rendered must not put its file where the
            # current attempt's goes.
            if not attempt.is_current():
                return "superseded"
            # The scratch directory goes next: its files can be moved, not copied.
            location = self.storage.put_file(render_key(job.id), result.path, move=True).key
            poster = (
                self.storage.put_file(poster_key(job.id), result.poster_path, move=True).key
                if result.poster_path is not None
                else None
            )
        return self._complete(
            attempt, location, result.duration_seconds, result.file_size_bytes, poster
        )

    def _complete(
        self,
        attempt: RenderAttempt,
        location: str,
        duration_seconds: float,
        file_size_bytes: int,
        poster: str | None,
    ) -> str:
        job_id = attempt.job.id
        try:
            attempt.record(
                lambda: self.app.complete_job(
                    job_id,
                    location,
                    duration_seconds,
                    file_size_bytes,
                    poster_location=poster,
                    attempt=attempt.number,
                )
            )
        except IllegalJobTransition:
            # Cancelled or failed while the last frames were encoded: the file must not
            # outlive the job. A job another attempt renders or completed keeps the file
            # (that attempt writes its own in the same place).
            if self.app.get_job(job_id).status in (CANCELLED, FAILED):
                for stored in (location, poster):
                    if stored is not None:
                        self.storage.delete(stored)
            return "finished elsewhere"
        return "completed"

    def _record_failure(self, attempt: RenderAttempt, message: str) -> str:
        job_id = attempt.job.id
        try:
            attempt.record(
                lambda: self.app.fail_job(job_id, "RENDER_FAILED", message, attempt=attempt.number)
            )
        except IllegalJobTransition:
            return "finished elsewhere"
        return "failed"


class RenderAttempt:
    """One attempt at rendering a job, as the worker holding it sees it.

    It is the renderer's progress callback (each report becomes a ProgressReported
    event) and keeps the lease alive between reports (`kept_alive`). Reports and
    renewals are written one at a time, on the latest state of the job."""

    def __init__(
        self, app: PhantomFlow, job: RenderJob, worker_name: str, lease_seconds: float
    ) -> None:
        self.app = app
        self.job = job
        self.worker_name = worker_name
        self.number = job.attempts
        self.lease_seconds = lease_seconds
        self.lost = False  # taken over, cancelled or failed: stop at the next report
        self._unsure = False  # the last write failed: reload the job before the next
        self._lock = threading.Lock()
        self._signalled_at = time.monotonic()

    def __call__(
        self, progress: float, stage: str, *, media_cache: dict[str, int] | None = None
    ) -> None:
        with self._lock:
            if self.lost:
                raise JobAbandoned(str(self.job.id))
            try:
                self._write(
                    lambda: self.app.report_progress(self.job, progress, stage, media_cache)
                )
            except UNAVAILABLE_ERRORS as error:
                # Progress is worth less than the render: carry on. The keep-alive
                # thread tries again; if the database stays away longer than the lease,
                # the job goes to another worker and this attempt's outcome is refused.
                log.warning("progress of job %s not recorded: %s", self.job.id, error)

    def renew(self) -> None:
        """Renew the lease if it has gone RENEW_SHARE of its length without a sign of life."""
        with self._lock:
            if self.lost or time.monotonic() - self._signalled_at < self.interval:
                return
            try:
                self._write(lambda: self.app.renew_lease(self.job, self.worker_name, self.number))
            except JobAbandoned:
                self.lost = True
            except UNAVAILABLE_ERRORS as error:
                log.warning("lease of job %s not renewed: %s", self.job.id, error)

    @property
    def interval(self) -> float:
        return self.lease_seconds * RENEW_SHARE

    def _write(self, write: Callable[[], None]) -> None:
        if self._unsure:
            # The last write failed: the job in hand holds its event, which may or may
            # not be stored. Writing on from it could store the next version without
            # that one, a gap that makes the job's history unreadable: start again
            # from the store.
            self.job = self.app.get_job(self.job.id)
            self._unsure = False
            self._check_still_ours()
        try:
            try:
                write()
            except (RecordConflictError, IllegalJobTransition):
                # Someone else wrote to the job: carry on only if it is still ours.
                self.job = self.app.get_job(self.job.id)
                self._check_still_ours()
                write()
        except UNAVAILABLE_ERRORS:
            self._unsure = True
            raise
        self._signalled_at = time.monotonic()

    def _check_still_ours(self) -> None:
        if not self.job.holds(self.worker_name, self.number):
            self.lost = True
            raise JobAbandoned(str(self.job.id))

    def is_current(self) -> bool:
        """Whether this attempt still holds the job (read from the event store)."""
        return self.app.get_job(self.job.id).holds(self.worker_name, self.number)

    def record(self, outcome: Callable[[], T]) -> T:
        """Record the attempt's outcome, waiting out a short database outage (up to the
        lease: after that another worker may have taken the job over anyway)."""
        deadline = time.monotonic() + self.lease_seconds
        while True:
            try:
                return outcome()
            except UNAVAILABLE_ERRORS:
                if time.monotonic() >= deadline:
                    raise
                log.warning("database unavailable; recording job %s again shortly", self.job.id)
                time.sleep(1.0)

    @contextlib.contextmanager
    def kept_alive(self) -> Iterator[None]:
        """Renew the lease from a thread of its own while the block runs."""
        done = threading.Event()

        def keep_alive() -> None:
            while not done.wait(min(self.interval, 5.0) / 2):
                try:
                    self.renew()
                except Exception:  # never let the keep-alive thread die silently
                    log.exception("renewing the lease of job %s failed", self.job.id)

        thread = threading.Thread(target=keep_alive, name=f"lease-{self.job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)
