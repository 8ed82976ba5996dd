"""Exports: a follower that sends one message per export attempt, and the actor that
makes each attempt and records it on the job.

Like webhooks (workers/webhooks.py), nothing talks to the broker inside a render:
`ExportScheduler` follows the event log and sends

- for a job `Completed` with exports: attempt 1 of each, now;
- for an `ExportFailed` that names its `next_attempt_at`: the next attempt, delayed
  until then (the schedule is domain/exports.py's, about a day at most).

Its position moves only past events whose messages were sent, so an export is never
lost while Redis is down; a message lost after it was sent (Redis restarted empty, a
worker killed holding it) is sent again from the scheduler's watch table
(workers/scheduling.py). The actor (`ExportService.run`) records `ExportStarted`
before delivering, so a message delivered twice runs once; an attempt whose worker
died is taken over once it has been running for longer than the actor's time limit
(`EXPORT_LEASE`). An export failing never touches the render, its file or its charge.

Sandbox jobs (ve_test_ keys) export their sample video for real to storage targets
(S3, FTP, SFTP), so an integration can be tried for free; email and YouTube exports
of sandbox jobs are recorded as skipped (SANDBOX_SKIPPED): a free key must not send
mail to anyone or publish on anyone's channel.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import dramatiq

from phantomflow.adapters import exports as targets
from phantomflow.adapters.secrets import MasterKeyMissing, SecretsUnavailable, SecretsVault
from phantomflow.adapters.settings import Settings
from phantomflow.adapters.storage import Storage, StorageError
from phantomflow.adapters.topics import topics_of
from phantomflow.domain import exports as ex
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.errors import JobNotFound
from phantomflow.domain.integrations import IntegrationNotFound, parse_integration_ref
from phantomflow.domain.jobs import RenderJob
from phantomflow.workers.scheduling import Scheduler

log = logging.getLogger(__name__)

EXPORT_QUEUE = "exports"
EXPORT_ACTOR = "export_job"
# One attempt may take this long (a large file over a slow link); its worker is
# presumed dead when it has been running for longer than the lease.
EXPORT_TIME_LIMIT = timedelta(hours=2)
EXPORT_LEASE = EXPORT_TIME_LIMIT + timedelta(minutes=5)
SANDBOX_SKIPPED = "SANDBOX_SKIPPED"
SANDBOX_SKIPS = ("email", "youtube")
INTEGRATION_UNAVAILABLE = "INTEGRATION_UNAVAILABLE"
STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"


class ExportBusy(Exception):
    """The attempt is running on another worker, which may have died: try again later."""


def export_options(settings: Settings) -> targets.ExportOptions:
    return targets.ExportOptions(
        allow_private=settings.allow_private_urls,
        email_attach_max_bytes=settings.email_attach_max_bytes,
        google_token_url=settings.google_token_url,
        youtube_upload_url=settings.youtube_upload_url,
    )


@dataclass
class ExportService:
    """One attempt of one export, recorded on the job."""

    app: PhantomFlow
    storage: Storage
    vault: SecretsVault
    options: targets.ExportOptions
    public_url: str | None
    retry_delays: tuple[float, ...] = ex.RETRY_DELAYS

    def run(self, job_id: UUID, index: int, attempt: int) -> str:
        """Make attempt `attempt` of export `index`; return what happened, for logs."""
        try:
            job = self.app.get_job(job_id)
        except JobNotFound:
            return "unknown job"
        if job.status != "completed" or not 0 <= index < len(job.exports):
            return "nothing to export"
        state = job.export_states[index]
        if state["status"] in ex.SETTLED:
            return "already settled"
        target = job.exports[index]
        if job.sandbox and target["type"] in SANDBOX_SKIPS:
            with contextlib.suppress(ex.IllegalExportTransition):
                self.app.skip_export(
                    job_id,
                    index,
                    SANDBOX_SKIPPED,
                    f"{target['type']} exports do not run for sandbox (ve_test_) keys",
                )
            return "skipped (sandbox)"
        try:
            self.app.start_export(job_id, index, attempt, EXPORT_LEASE)
        except ex.IllegalExportTransition as refused:
            if state["status"] == ex.RUNNING and state["attempts"] == attempt:
                raise ExportBusy(str(refused)) from None
            return f"not this attempt's turn: {refused}"
        started = time.monotonic()
        outcome = self._attempt(job, target)
        duration_ms = round((time.monotonic() - started) * 1000)
        try:
            self.app.finish_export(job_id, index, attempt, outcome, duration_ms,
                                   self.retry_delays)  # fmt: skip
        except ex.IllegalExportTransition:
            return "settled elsewhere (the output was deleted meanwhile?)"
        if outcome.delivered:
            return f"delivered to {outcome.location}"
        return f"failed: {outcome.code}: {outcome.message}"

    def _attempt(self, job: RenderJob, target: dict[str, Any]) -> ex.ExportOutcome:
        try:
            integration_id = parse_integration_ref(target["integration_id"])
            if integration_id is None:
                raise IntegrationNotFound(target["integration_id"])
            integration = self.app.get_integration(integration_id)
            integration.check_usable_by(job.account_id, job.sandbox)
            secrets = self.vault.open(integration.id, integration.sealed_secrets)
        except (IntegrationNotFound, SecretsUnavailable, MasterKeyMissing) as missing:
            return ex.ExportOutcome(
                code=INTEGRATION_UNAVAILABLE,
                message=f"integration {target['integration_id']} is deleted or its secrets "
                f"cannot be opened ({missing})",
                permanent=True,
            )
        if job.output_location is None or job.output_deleted:
            return ex.ExportOutcome(code=ex.OUTPUT_DELETED, message="no output", permanent=True)
        scratch = Path(tempfile.gettempdir())
        try:
            with contextlib.ExitStack() as stack:
                file = stack.enter_context(self.storage.local_copy(job.output_location, scratch))
                poster = None
                if target["type"] == "email" and job.poster_location:
                    with contextlib.suppress(FileNotFoundError):
                        poster = stack.enter_context(
                            self.storage.local_copy(job.poster_location, scratch)
                        )
                request = targets.ExportRequest(
                    job_id=job.id,
                    file=file,
                    filename=targets.filename_for(target.get("filename"), job.id),
                    target=target,
                    settings=integration.settings,
                    secrets=secrets,
                    options=self.options,
                    poster=poster,
                    output_uri=self._uri(job.output_location),
                    poster_uri=self._uri(job.poster_location),
                )
                return targets.deliver(target["type"], request)
        except FileNotFoundError:
            message = "the job's output is no longer in storage"
            return ex.ExportOutcome(code=ex.OUTPUT_DELETED, message=message, permanent=True)
        except StorageError as error:
            return ex.ExportOutcome(code=STORAGE_UNAVAILABLE, message=str(error))

    def _uri(self, location: str | None) -> str | None:
        return f"{self.public_url}/outputs/{location}" if self.public_url and location else None


class ExportScheduler(Scheduler):
    """Follows completions and attempts; sends each export attempt to the queue, and
    again if its message is lost (workers/scheduling.py)."""

    name = "exports"
    what = "exports"
    topics = topics_of(
        RenderJob.Completed,
        RenderJob.ExportStarted,
        RenderJob.ExportSucceeded,
        RenderJob.ExportFailed,
        RenderJob.ExportSkipped,
        RenderJob.OutputDeleted,
    )

    def schedule(self, event: Any) -> None:
        job_id = str(event.originator_id)
        if isinstance(event, RenderJob.Completed):
            for index, _ in enumerate(getattr(self.submitted(event), "exports", None) or []):
                self.dispatch(job_id, index, 1, 0)
        elif isinstance(event, RenderJob.ExportStarted):
            # An attempt whose worker died is taken over once its lease has run out.
            self.running(job_id, event.index, event.attempt, event.started_at + EXPORT_LEASE)
        elif isinstance(event, RenderJob.ExportFailed):
            self.heard(job_id, event.index, event.attempt)
            if event.next_attempt_at is not None:
                delay = self.delay_until(event.next_attempt_at)
                self.dispatch(job_id, event.index, event.attempt + 1, delay)
        elif isinstance(event, RenderJob.ExportSucceeded):
            self.heard(job_id, event.index, event.attempt)
        elif isinstance(event, RenderJob.ExportSkipped):
            self.heard(job_id, event.index)
        elif isinstance(event, RenderJob.OutputDeleted):
            self.heard(job_id)  # its unsettled exports are ended with it


def _should_retry(retries: int, error: BaseException) -> bool:
    # A busy attempt until its worker finishes or its lease runs out (30 tries, at most
    # 10 min apart, outlast EXPORT_LEASE); anything else (the event store briefly
    # unreachable) a few times. Failed deliveries are retried by the schedule instead.
    if isinstance(error, ExportBusy):
        return retries < 30
    return retries < 5


def declare_export_actor(
    broker: dramatiq.Broker, service: Callable[[], ExportService]
) -> dramatiq.Actor[[str, int, int], None]:
    def export_job(job_id: str, index: int, attempt: int) -> None:
        outcome = service().run(UUID(job_id), index, attempt)
        log.info("export %d of job %s (attempt %d): %s", index, job_id, attempt, outcome)

    return dramatiq.actor(
        export_job,
        broker=broker,
        actor_name=EXPORT_ACTOR,
        queue_name=EXPORT_QUEUE,
        time_limit=int(EXPORT_TIME_LIMIT.total_seconds() * 1000),
        retry_when=_should_retry,
        min_backoff=1_000,
        max_backoff=600_000,
    )
