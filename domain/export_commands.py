"""The service layer's commands for integrations, exports and deleting outputs.

A mixin of `PhantomFlow` (domain/application.py): it uses the application's
repository, `save` and conflict retries, and adds nothing else to its state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from phantomflow.domain import exports as ex
from phantomflow.domain.concurrency import ConflictRetries
from phantomflow.domain.integrations import (
    Integration,
    IntegrationNotFound,
    integration_ref,
    parse_integration_ref,
)
from phantomflow.domain.jobs import RenderJob

T = TypeVar("T")


class ExportCommands:
    # Provided by the application (eventsourcing's Application and PhantomFlow).
    repository: Any
    save: Callable[..., Any]
    get_job: Callable[[UUID], RenderJob]
    retries: ConflictRetries

    # --- integrations -----------------------------------------------------------------

    def create_integration(
        self,
        integration_id: UUID,
        account_id: UUID,
        sandbox: bool,
        type: str,
        name: str,
        settings: dict[str, Any],
        sealed_secrets: str,
        secret_hints: dict[str, str | None],
    ) -> tuple[Integration, int | None]:
        """Record a new integration; return it and where its event landed."""
        integration = Integration(
            id=integration_id,
            account_id=account_id,
            sandbox=sandbox,
            type=type,
            name=name,
            settings=settings,
            sealed_secrets=sealed_secrets,
            secret_hints=secret_hints,
        )
        recordings = self.save(integration)
        return integration, max((r.notification.id for r in recordings), default=None)

    def get_integration(self, integration_id: UUID) -> Integration:
        """The integration as stored, deleted or not; raises IntegrationNotFound."""
        missing = f"No integration {integration_ref(integration_id)}."
        try:
            found = self.repository.get(integration_id)
        except AggregateNotFoundError:
            raise IntegrationNotFound(missing) from None
        if not isinstance(found, Integration):
            raise IntegrationNotFound(missing)
        return found

    def usable_integration(self, account_id: UUID, sandbox: bool, ref: Any) -> Integration:
        """The account's live (or sandbox) integration with public id `ref`."""
        integration_id = parse_integration_ref(ref)
        if integration_id is None:
            raise IntegrationNotFound(f"No integration {ref}.")
        integration = self.get_integration(integration_id)
        integration.check_usable_by(account_id, sandbox)
        return integration

    def delete_integration(
        self, account_id: UUID, sandbox: bool, ref: str, before_delete: Callable[[UUID], None]
    ) -> int | None:
        """Delete the integration; `before_delete(id)` runs first (it destroys the data
        key: if recording the deletion then fails, the secret is gone all the same and
        a retry records it). Return where the event landed."""

        def delete() -> int | None:
            integration = self.usable_integration(account_id, sandbox, ref)
            before_delete(integration.id)
            integration.delete()
            recordings = self.save(integration)
            return max((r.notification.id for r in recordings), default=None)

        result: int | None = self.retries.run(delete)
        return result

    def check_export_targets(
        self, account_id: UUID, sandbox: bool, targets: Sequence[dict[str, Any]]
    ) -> None:
        """Every target names a usable integration of its own type; else
        ExportTargetInvalid at the target's `integration_id`."""
        for index, target in enumerate(targets):
            path = f"exports.{index}.integration_id"
            try:
                integration = self.usable_integration(
                    account_id, sandbox, target.get("integration_id")
                )
            except IntegrationNotFound:
                mode = "sandbox" if sandbox else "live"
                raise ex.ExportTargetInvalid(
                    path,
                    f"No integration {target.get('integration_id')} among this account's "
                    f"{mode} integrations (GET /api/integrations lists them).",
                ) from None
            if integration.type != target["type"]:
                raise ex.ExportTargetInvalid(
                    path,
                    f"Integration {integration.ref} is of type {integration.type}; "
                    f"a {target['type']} export needs a {target['type']} integration.",
                )

    # --- running exports --------------------------------------------------------------

    def start_export(self, job_id: UUID, index: int, attempt: int, lease: timedelta) -> RenderJob:
        """Record that a worker starts this attempt; raises IllegalExportTransition when
        it is not this attempt's turn (a duplicate message, a settled export)."""

        def start() -> RenderJob:
            job = self.get_job(job_id)
            job.start_export(index, attempt, datetime.now(UTC), lease)
            self.save(job)
            return job

        job: RenderJob = self.retries.run(start)
        return job

    def finish_export(
        self,
        job_id: UUID,
        index: int,
        attempt: int,
        outcome: ex.ExportOutcome,
        duration_ms: int,
        retry_delays: tuple[float, ...] = ex.RETRY_DELAYS,
    ) -> RenderJob:
        """Record an attempt's outcome; a retryable failure names its next attempt."""

        def finish() -> RenderJob:
            job = self.get_job(job_id)
            if outcome.delivered:
                job.succeed_export(index, attempt, outcome.location or "", outcome.bytes,
                                   duration_ms)  # fmt: skip
            else:
                delay = None if outcome.permanent else ex.next_attempt_delay(attempt, retry_delays)
                job.fail_export(
                    index,
                    attempt,
                    outcome.code or "EXPORT_FAILED",
                    outcome.message or "",
                    datetime.now(UTC) + timedelta(seconds=delay) if delay is not None else None,
                )
            self.save(job)
            return job

        job: RenderJob = self.retries.run(finish)
        return job

    def skip_export(self, job_id: UUID, index: int, code: str, message: str) -> RenderJob:
        def skip() -> RenderJob:
            job = self.get_job(job_id)
            job.skip_export(index, code, message)
            self.save(job)
            return job

        job: RenderJob = self.retries.run(skip)
        return job

    # --- deleting outputs -------------------------------------------------------------

    def delete_output(self, job_id: UUID) -> RenderJob:
        """Record that the job's files are deleted (the caller deletes them after).
        Raises IllegalJobTransition when the job has no output or it is already gone."""

        def delete() -> RenderJob:
            job = self.get_job(job_id)
            job.delete_output()
            self.save(job)
            return job

        job: RenderJob = self.retries.run(delete)
        return job
