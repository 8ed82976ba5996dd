"""Rendering one job: take it, render it with progress, record the outcome.

Safe to run twice for the same job (a message redelivered, a job dispatched twice):
a finished job is left alone, and only one worker can record `Started` for a queued
job (the other meets a version conflict). A job whose worker went quiet for longer
than the lease is taken over, so a crashed worker never strands a job.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

from phantomflow.adapters.render import FFmpegRenderer, RenderFailed
from phantomflow.adapters.samples import SANDBOX_SAMPLE, SANDBOX_SAMPLE_SECONDS
from phantomflow.adapters.storage import Storage, poster_key, render_key
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.errors import IllegalJobTransition, JobNotFound
from phantomflow.domain.jobs import RenderJob

log = logging.getLogger(__name__)


# How long each stage of a sandbox job takes.
SANDBOX_STEP_SECONDS = 0.05


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
            self.worker_name = f"worker-{uuid.uuid4().hex[:8]}"

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
            raise JobBusy(str(busy)) from None
        except RecordConflictError:
            return "taken by another worker"
        if job.sandbox:
            return self._simulate(job)
        return self._render(job)

    def _simulate(self, job: RenderJob) -> str:
        """A sandbox job: the same statuses, stages and events as a render, in a moment,
        without FFmpeg, ending with the bundled sample video."""
        progress = ProgressRecorder(self.app, job, self.worker_name)
        scenes = len(job.script["scenes"])
        try:
            for scene in range(1, scenes + 1):
                progress(0.95 * (scene - 1) / scenes, f"rendering_scene_{scene}")
                time.sleep(SANDBOX_STEP_SECONDS)
            progress(0.95, "stitching")
        except JobAbandoned:
            return "abandoned"
        location = self.storage.put_file(render_key(job.id), SANDBOX_SAMPLE).key
        try:
            self.app.complete_job(
                job.id, location, SANDBOX_SAMPLE_SECONDS, SANDBOX_SAMPLE.stat().st_size
            )
        except IllegalJobTransition:
            return "finished elsewhere"
        return "completed"

    def _render(self, job: RenderJob) -> str:
        progress = ProgressRecorder(self.app, job, self.worker_name)
        with tempfile.TemporaryDirectory(prefix=f"render-{job.id}-") as scratch:
            work_dir = Path(scratch)
            try:
                result = self.renderer.render(
                    self.app.script_of(job),
                    work_dir / "output.mp4",
                    progress,
                    work_dir,
                )
            except RenderFailed as failure:
                return self._record_failure(job.id, failure.message)
            except JobAbandoned:
                return "abandoned"
            except Exception:
                reference = uuid.uuid4().hex[:12]
                log.exception("render of job %s crashed (reference %s)", job.id, reference)
                return self._record_failure(
                    job.id, f"internal error while rendering (reference {reference})"
                )
            # The scratch directory goes next: its files can be moved, not copied.
            location = self.storage.put_file(render_key(job.id), result.path, move=True).key
            poster = (
                self.storage.put_file(poster_key(job.id), result.poster_path, move=True).key
                if result.poster_path is not None
                else None
            )
        try:
            self.app.complete_job(
                job.id,
                location,
                result.duration_seconds,
                result.file_size_bytes,
                poster_location=poster,
            )
        except IllegalJobTransition:
            # Cancelled (or failed) while the last frames were encoded: the file must not
            # outlive the job. A job completed by another worker keeps its file.
            if self.app.get_job(job.id).status != "completed":
                for stored in (location, poster):
                    if stored is not None:
                        self.storage.delete(stored)
            return "finished elsewhere"
        return "completed"

    def _record_failure(self, job_id: UUID, message: str) -> str:
        try:
            self.app.fail_job(job_id, "RENDER_FAILED", message)
        except IllegalJobTransition:
            return "finished elsewhere"
        return "failed"


class ProgressRecorder:
    """The renderer's progress callback: each report becomes a ProgressReported event."""

    def __init__(self, app: PhantomFlow, job: RenderJob, worker_name: str) -> None:
        self.app = app
        self.job = job
        self.worker_name = worker_name

    def __call__(self, progress: float, stage: str) -> None:
        try:
            self.app.report_progress(self.job, progress, stage)
        except (RecordConflictError, IllegalJobTransition):
            # Someone else wrote to the job: carry on only if it is still ours.
            self.job = self.app.get_job(self.job.id)
            if self.job.status != "processing" or self.job.worker != self.worker_name:
                raise JobAbandoned(str(self.job.id)) from None
            self.app.report_progress(self.job, progress, stage)
