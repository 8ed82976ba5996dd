"""The render job: one script's life from submission to a finished MP4 or a failure.

Status is never stored, it is derived from the events: a job is `queued` once
submitted, `processing` once a worker starts it, and ends `completed` or `failed`.
Public methods check the transition first and only then trigger the event, so an
illegal change raises `IllegalJobTransition` and leaves nothing to save.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from phantomflow.domain import exports as ex
from phantomflow.domain.errors import IllegalJobTransition

QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
STATUSES = (QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED)
FINAL_STATUSES = (COMPLETED, FAILED, CANCELLED)  # a job in one of these never changes again

AUTOMATIC = "automatic"
MANUAL = "manual"
WEBHOOK_TRIGGERS = (AUTOMATIC, MANUAL)


@dataclass(frozen=True)
class WebhookAttempt:
    """One POST of a job's webhook and how it went.

    `trigger` is "automatic" (the n-th attempt of the schedule, n = `sequence`) or
    "manual" (the n-th redelivery request). `status_code` is None when no answer came
    (then `error` says why); `next_attempt_at` is when the schedule tries again, if
    it does."""

    trigger: str
    sequence: int
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int
    next_attempt_at: datetime | None
    response_excerpt: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class RenderJob(Aggregate):
    # Defaults for jobs (and snapshots) recorded before exports and output deletion.
    exports: tuple[dict[str, Any], ...] | list[dict[str, Any]] = ()
    export_states: tuple[dict[str, Any], ...] | list[dict[str, Any]] = ()
    output_deleted = False
    # The current attempt's lease: how long it may go without a sign of life (progress,
    # a renewal) before another worker may take the job over. Recorded with `Started`;
    # jobs started (or snapshotted) before leases were recorded have none.
    lease_seconds: float | None = None

    @event("Submitted")
    def __init__(
        self,
        account_id: UUID,
        script: dict[str, Any],
        estimated_credits: int,
        quality: str,
        webhook_uri: str | None,
        origin: dict[str, Any],
        sandbox: bool = False,
        exports: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,  # absent from events recorded before it
    ) -> None:
        self.account_id = account_id
        # A sandbox job (submitted with a ve_test_ key) costs nothing and is not rendered.
        self.sandbox = sandbox
        self.script = script
        self.estimated_credits = estimated_credits
        self.quality = quality
        self.webhook_uri = webhook_uri
        self.origin = origin
        # The client's own object, handed back with the job everywhere (domain/metadata.py).
        self.metadata = metadata or {}
        self.status = QUEUED
        self.progress = 0.0
        self.stage: str | None = None
        self.attempts = 0
        self.worker: str | None = None
        self.output_location: str | None = None
        self.poster_location: str | None = None
        self.duration_seconds: float | None = None
        self.file_size_bytes: int | None = None
        self.credits_used: int | None = None
        self.error: dict[str, str] | None = None
        # Webhook deliveries: which (trigger, sequence) attempts are recorded, whether
        # one got a 2xx, and how many manual redeliveries were asked for.
        # (A list of "trigger:sequence" keys, not a set: snapshots must be JSON.)
        self.webhook_attempted: list[str] = []
        self.webhook_attempt_count = 0
        self.webhook_delivered = False
        self.webhook_redeliveries = 0
        # Export targets as submitted (no secrets: integrations hold those), and what
        # became of each (domain/exports.py).
        self.exports = list(exports or [])
        self.export_states = ex.initial_states(self.exports)
        self.output_deleted = False

    @property
    def is_finished(self) -> bool:
        return self.status in FINAL_STATUSES

    # --- starting -----------------------------------------------------------------

    def start(self, worker: str, lease_seconds: float | None = None) -> None:
        """A worker takes the job, promising a sign of life at least every
        `lease_seconds`. A job already processing can be taken over only through
        `take_over`, when its previous worker has gone quiet."""
        if self.status != QUEUED:
            raise IllegalJobTransition(f"cannot start a job that is {self.status}")
        self._started(worker=worker, attempt=self.attempts + 1, lease_seconds=lease_seconds)

    def lease_expires_at(self, default_lease_seconds: float) -> datetime:
        """When the current attempt's lease runs out unless it shows a sign of life:
        its own lease (or, for one that recorded none, `default_lease_seconds`) after
        its last event."""
        lease = self.lease_seconds or default_lease_seconds
        return self.modified_on + timedelta(seconds=lease)

    def take_over(self, worker: str, now: datetime, lease_seconds: float) -> None:
        """Restart a job whose worker stopped reporting (crashed, killed, lost) for
        longer than its lease; the new attempt holds a lease of `lease_seconds`."""
        if self.status != PROCESSING:
            raise IllegalJobTransition(f"cannot take over a job that is {self.status}")
        if now < self.lease_expires_at(lease_seconds):
            raise IllegalJobTransition("the job's worker is still active")
        self._started(worker=worker, attempt=self.attempts + 1, lease_seconds=lease_seconds)

    @event("Started")
    def _started(self, worker: str, attempt: int, lease_seconds: float | None = None) -> None:
        self.status = PROCESSING
        self.worker = worker
        self.attempts = attempt
        self.lease_seconds = lease_seconds
        self.progress = 0.0
        self.stage = "starting"

    def holds(self, worker: str, attempt: int) -> bool:
        """Whether `attempt` by `worker` is still the job's current attempt."""
        return self.status == PROCESSING and self.worker == worker and self.attempts == attempt

    def renew_lease(self, worker: str, attempt: int) -> None:
        """A sign of life from the attempt rendering the job, between progress reports."""
        if not self.holds(worker, attempt):
            raise IllegalJobTransition(f"attempt {attempt} no longer holds the job")
        self._lease_renewed()

    @event("LeaseRenewed")
    def _lease_renewed(self) -> None:
        pass  # the event's time is the sign of life

    # --- progress -----------------------------------------------------------------

    def report_progress(
        self, progress: float, stage: str, media_cache: dict[str, int] | None = None
    ) -> None:
        """`media_cache` ({"hits": n, "misses": n}): how many of the sources came from
        the worker's media cache, on the report that ends `downloading`."""
        if self.status != PROCESSING:
            raise IllegalJobTransition(f"cannot report progress on a job that is {self.status}")
        if not 0 <= progress <= 1:
            raise ValueError(f"progress must be between 0 and 1, got {progress}")
        # Progress only ever rises within one attempt, so a reader never sees it go back.
        self._progress_reported(
            progress=max(progress, self.progress), stage=stage, media_cache=media_cache
        )

    @event("ProgressReported")
    def _progress_reported(
        self,
        progress: float,
        stage: str,
        media_cache: dict[str, int] | None = None,  # absent from events before the cache
    ) -> None:
        self.progress = progress
        self.stage = stage

    # --- endings ------------------------------------------------------------------

    def complete(
        self,
        output_location: str,
        duration_seconds: float,
        file_size_bytes: int,
        credits_used: int,
        poster_location: str | None = None,
        attempt: int | None = None,
    ) -> None:
        """Record the finished render. With `attempt`, only if that attempt is still
        the current one: a superseded attempt never completes (nor settles) the job."""
        if self.status != PROCESSING:
            raise IllegalJobTransition(f"cannot complete a job that is {self.status}")
        self._check_current(attempt)
        if not 0 <= credits_used <= self.estimated_credits:
            raise ValueError("credits used must lie between 0 and the estimate")
        self._completed(
            output_location=output_location,
            duration_seconds=duration_seconds,
            file_size_bytes=file_size_bytes,
            credits_used=credits_used,
            poster_location=poster_location,
        )

    @event("Completed")
    def _completed(
        self,
        output_location: str,
        duration_seconds: float,
        file_size_bytes: int,
        credits_used: int,
        poster_location: str | None = None,  # absent from events recorded before posters
    ) -> None:
        self.status = COMPLETED
        self.progress = 1.0
        self.stage = "complete"
        self.output_location = output_location
        self.duration_seconds = duration_seconds
        self.file_size_bytes = file_size_bytes
        self.credits_used = credits_used
        self.poster_location = poster_location

    def cancel(self, credits_used: int, reason: str) -> None:
        """The customer stopped the job; it keeps `credits_used` of its estimate."""
        if self.is_finished:
            raise IllegalJobTransition(f"cannot cancel a job that is {self.status}")
        if not 0 <= credits_used <= self.estimated_credits:
            raise ValueError("credits used must lie between 0 and the estimate")
        self._cancelled(credits_used=credits_used, reason=reason)

    @event("Cancelled")
    def _cancelled(self, credits_used: int, reason: str) -> None:
        self.status = CANCELLED
        self.stage = "cancelled"
        self.credits_used = credits_used
        self.error = {"code": "CANCELLED", "message": reason}

    def fail(self, code: str, message: str, attempt: int | None = None) -> None:
        """Record a failure; with `attempt`, only if that attempt is still the current one."""
        if self.is_finished:
            raise IllegalJobTransition(f"cannot fail a job that is {self.status}")
        self._check_current(attempt)
        self._failed(code=code, message=message)

    def _check_current(self, attempt: int | None) -> None:
        if attempt is not None and attempt != self.attempts:
            raise IllegalJobTransition(
                f"attempt {attempt} was superseded by attempt {self.attempts}"
            )

    @event("Failed")
    def _failed(self, code: str, message: str) -> None:
        self.status = FAILED
        self.stage = "failed"
        self.credits_used = 0
        self.error = {"code": code, "message": message}

    # --- webhook deliveries -------------------------------------------------------

    def record_webhook_attempt(self, attempt: WebhookAttempt) -> None:
        """Log one POST of the job's webhook.

        Each (trigger, sequence) is recorded once, so a redelivered queue message
        cannot log (or schedule) an attempt twice."""
        if not self.is_finished:
            raise IllegalJobTransition(f"no webhook is sent for a job that is {self.status}")
        if attempt.trigger not in WEBHOOK_TRIGGERS:
            raise ValueError(f"unknown webhook trigger {attempt.trigger!r}")
        if f"{attempt.trigger}:{attempt.sequence}" in self.webhook_attempted:
            raise IllegalJobTransition(
                f"webhook attempt {attempt.trigger} {attempt.sequence} is already recorded"
            )
        # The event keeps its flat fields: stored events already have this shape.
        self._webhook_attempted(
            attempt=self.webhook_attempt_count + 1,
            delivered=attempt.delivered,
            **vars(attempt),
        )

    @event("WebhookAttempted")
    def _webhook_attempted(
        self,
        attempt: int,
        trigger: str,
        sequence: int,
        url: str,
        status_code: int | None = None,
        error: str | None = None,
        duration_ms: int = 0,
        delivered: bool = False,
        next_attempt_at: datetime | None = None,
        response_excerpt: str = "",
    ) -> None:
        self.webhook_attempted.append(f"{trigger}:{sequence}")
        self.webhook_attempt_count = attempt
        self.webhook_delivered = self.webhook_delivered or delivered

    def request_webhook_redelivery(self) -> int:
        """Ask for the ended job's webhook to be sent again; return the request's number."""
        if not self.is_finished:
            raise IllegalJobTransition(f"the job is {self.status}: it has no webhook to resend")
        if not self.webhook_uri:
            raise IllegalJobTransition("the job has no webhook_uri")
        self._webhook_redelivery_requested(request=self.webhook_redeliveries + 1)
        return self.webhook_redeliveries

    @event("WebhookRedeliveryRequested")
    def _webhook_redelivery_requested(self, request: int) -> None:
        self.webhook_redeliveries = request

    # --- exports --------------------------------------------------------------------

    @property
    def exports_settled(self) -> bool:
        """Nothing more will happen to the exports: all settled, or the job did not
        complete (then none runs)."""
        return self.status != COMPLETED or ex.is_settled(list(self.export_states))

    def _export_state(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.export_states):
            raise ex.IllegalExportTransition(f"the job has no export {index}")
        if self.status != COMPLETED:
            raise ex.IllegalExportTransition(f"exports do not run for a job that is {self.status}")
        return self.export_states[index]

    def start_export(self, index: int, attempt: int, now: datetime, lease: timedelta) -> None:
        """A worker starts attempt `attempt` of export `index`: the next attempt of a
        pending export, or the same one again when its worker went quiet for `lease`."""
        state = self._export_state(index)
        if self.output_deleted:
            raise ex.IllegalExportTransition("the job's output has been deleted")
        if state["status"] == ex.PENDING and state["attempts"] == attempt - 1:
            pass
        elif not (
            state["status"] == ex.RUNNING
            and state["attempts"] == attempt
            and ex.lease_expired(state["started_at"], now, lease)
        ):
            raise ex.IllegalExportTransition(
                f"export {index} is {state['status']} after {state['attempts']} attempts; "
                f"attempt {attempt} cannot start"
            )
        self._export_started(index=index, attempt=attempt, started_at=now)

    @event("ExportStarted")
    def _export_started(self, index: int, attempt: int, started_at: datetime) -> None:
        # `started_at` is the worker's clock, for the lease: a decorated method cannot
        # see its own event's timestamp.
        self._set_export(
            index,
            status=ex.RUNNING,
            attempts=attempt,
            started_at=started_at.isoformat(),
            next_attempt_at=None,
        )

    def _check_running(self, index: int, attempt: int) -> None:
        state = self._export_state(index)
        if state["status"] != ex.RUNNING or state["attempts"] != attempt:
            raise ex.IllegalExportTransition(
                f"export {index} attempt {attempt} is not running ({state['status']}, "
                f"attempt {state['attempts']})"
            )

    def succeed_export(
        self, index: int, attempt: int, location: str, size: int, duration_ms: int
    ) -> None:
        self._check_running(index, attempt)
        self._export_succeeded(
            index=index, attempt=attempt, location=location, bytes=size, duration_ms=duration_ms
        )
        self._settle_exports()

    @event("ExportSucceeded")
    def _export_succeeded(
        self, index: int, attempt: int, location: str, bytes: int, duration_ms: int
    ) -> None:
        self._set_export(
            index,
            status=ex.SUCCEEDED,
            location=location,
            bytes=bytes,
            duration_ms=duration_ms,
            error=None,
        )

    def fail_export(
        self,
        index: int,
        attempt: int,
        code: str,
        message: str,
        next_attempt_at: datetime | None,
    ) -> None:
        """Record a failed attempt; without `next_attempt_at` the export has failed for
        good."""
        self._check_running(index, attempt)
        self._export_failed(
            index=index,
            attempt=attempt,
            code=code,
            message=message,
            final=next_attempt_at is None,
            next_attempt_at=next_attempt_at,
        )
        self._settle_exports()

    @event("ExportFailed")
    def _export_failed(
        self,
        index: int,
        attempt: int,
        code: str,
        message: str,
        final: bool,
        next_attempt_at: datetime | None,
    ) -> None:
        self._set_export(
            index,
            status=ex.FAILED if final else ex.PENDING,
            error={"code": code, "message": message},
            next_attempt_at=next_attempt_at.isoformat() if next_attempt_at else None,
        )

    def skip_export(self, index: int, code: str, message: str) -> None:
        state = self._export_state(index)
        if state["status"] != ex.PENDING or state["attempts"]:
            raise ex.IllegalExportTransition(f"export {index} has already run")
        self._export_skipped(index=index, code=code, message=message)
        self._settle_exports()

    @event("ExportSkipped")
    def _export_skipped(self, index: int, code: str, message: str) -> None:
        self._set_export(index, status=ex.SKIPPED, error={"code": code, "message": message})

    def _settle_exports(self) -> None:
        if ex.is_settled(list(self.export_states)):
            self._exports_settled()

    @event("ExportsSettled")
    def _exports_settled(self) -> None:
        pass

    def _set_export(self, index: int, **changes: Any) -> None:
        # A new list each time: the class-level default must never be changed in place.
        states = [dict(state) for state in self.export_states]
        states[index].update(changes)
        self.export_states = states

    # --- deleting the output ----------------------------------------------------------

    def delete_output(self) -> list[int]:
        """Record that the finished job's files are deleted; return the exports this
        ends (any not yet settled fail for good with OUTPUT_DELETED). The job, its
        ledger entries and its history stay."""
        if self.status != COMPLETED:
            raise IllegalJobTransition(f"a job that is {self.status} has no output to delete")
        if self.output_deleted:
            raise IllegalJobTransition("the output is already deleted")
        unsettled = [
            index
            for index, state in enumerate(self.export_states)
            if state["status"] not in ex.SETTLED
        ]
        self._output_deleted(abandoned_exports=unsettled)
        if unsettled:
            self._exports_settled()
        return unsettled

    @event("OutputDeleted")
    def _output_deleted(self, abandoned_exports: list[int]) -> None:
        self.output_deleted = True
        for index in abandoned_exports:
            self._set_export(
                index,
                status=ex.FAILED,
                next_attempt_at=None,
                error={
                    "code": ex.OUTPUT_DELETED,
                    "message": "the job's output was deleted before this export finished",
                },
            )

    @property
    def refund_due(self) -> int:
        """Credits to give back once the job has ended: the unused part of the estimate."""
        if not self.is_finished or self.credits_used is None:
            return 0
        return self.estimated_credits - self.credits_used
