"""The service layer: every change to jobs, accounts and keys goes through here.

`PhantomFlow` is an `eventsourcing` Application. It does no I/O of its own: its event
store is whatever infrastructure the environment names (SQLite for the embedded
default, PostgreSQL in production; see `adapters/persistence.py`).

Changes that touch two aggregates (a submission charges the account and creates the
job; a completion settles the job and refunds the difference) are saved in one call
to `save`, so they are recorded atomically or not at all. Optimistic concurrency
does the rest: when two requests race on one account, one of them meets a version
conflict, reloads and tries again against the new balance.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from domain import pricing
from domain.accounts import FAILURE, SETTLEMENT, CreditAccount
from domain.errors import AccountNotFound, JobNotFound
from domain.jobs import RenderJob
from domain.keys import LIVE, TEST, ApiKey, hash_key, mint, mode_of
from domain.script import MovieScript

log = logging.getLogger(__name__)

T = TypeVar("T")

# A submission retries its version conflicts this many times. Each retry reloads the
# account, so it either succeeds against the new balance or fails with 402: contention
# only costs time, it never loses or duplicates a charge.
MAX_CONFLICT_RETRIES = 100


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account a key belongs to and whether it is live or sandbox."""

    account_id: UUID
    mode: str
    key_prefix: str


@dataclass(frozen=True)
class OpenedAccount:
    account_id: UUID
    api_key: str
    test_api_key: str


@dataclass(frozen=True)
class Submission:
    job_id: UUID
    status: str
    estimated_credits: int
    credits_remaining: int


def describe(domain_event: Any) -> dict[str, Any]:
    """A stored event as plain JSON-ready data, for audit views."""
    meta = ("originator_id", "originator_version", "timestamp")
    data = {key: _plain(value) for key, value in vars(domain_event).items() if key not in meta}
    return {
        "type": type(domain_event).__name__,
        "at": domain_event.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "version": domain_event.originator_version,
        "data": data,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


class PhantomFlow(Application[UUID]):
    name = "PhantomFlow"

    # Long-lived aggregates are snapshotted, so loading one replays at most this many
    # events after its latest snapshot (an account with 100,000 movements loads in
    # milliseconds; see docs/performance.md). Snapshots are a cache: the events stay
    # the record, and `balance_at` never reads a snapshot.
    snapshotting_intervals: ClassVar[dict[type[Aggregate], int]] = {
        CreditAccount: 200,
        RenderJob: 200,
    }

    # --- accounts and keys --------------------------------------------------------

    def open_account(self, plan: str, credits: int) -> OpenedAccount:
        account = CreditAccount(plan=plan)
        if credits:
            account.grant(credits, reason="opening balance")
        live, test = mint(LIVE), mint(TEST)
        indexes = []
        for key in (live, test):
            account.record_api_key(prefix=key.display_prefix, mode=key.mode)
            indexes.append(
                ApiKey(
                    key_hash=hash_key(key.secret),
                    account_id=account.id,
                    mode=key.mode,
                    prefix=key.display_prefix,
                )
            )
        self.save(account, *indexes)
        return OpenedAccount(account_id=account.id, api_key=live.secret, test_api_key=test.secret)

    def grant_credits(self, account_id: UUID, amount: int, reason: str) -> int:
        def grant() -> int:
            account = self.get_account(account_id)
            account.grant(amount, reason=reason)
            self.save(account)
            return account.balance

        return self._retry_on_conflict(grant)

    def get_account(self, account_id: UUID) -> CreditAccount:
        try:
            account = self.repository.get(account_id)
        except AggregateNotFoundError:
            raise AccountNotFound(f"no account {account_id}") from None
        if not isinstance(account, CreditAccount):
            raise AccountNotFound(f"no account {account_id}")
        return account

    def authenticate(self, api_key: str) -> Principal | None:
        if mode_of(api_key) is None:
            return None
        try:
            index = self.repository.get(ApiKey.id_for(api_key))
        except AggregateNotFoundError:
            return None
        if not isinstance(index, ApiKey) or not index.matches(api_key):
            return None
        return Principal(account_id=index.account_id, mode=index.mode, key_prefix=index.prefix)

    def balance_at(self, account_id: UUID, at: datetime) -> tuple[int, int]:
        """(balance, version) of an account at an instant, replayed from its events.

        Read from the event store, never from a read model: this is the audit's answer.
        An account not yet opened at that instant has balance 0 at version 0."""
        account: CreditAccount | None = None
        for domain_event in self.events.get(account_id):
            if domain_event.timestamp > at:
                break
            account = domain_event.mutate(account)
        if account is None:
            self.get_account(account_id)  # raises AccountNotFound for unknown ids
            return 0, 0
        return account.balance, account.version

    # --- submission ---------------------------------------------------------------

    def submit_render(
        self,
        account_id: UUID,
        script: dict[str, Any],
        webhook_uri: str | None,
        origin: dict[str, Any],
    ) -> Submission:
        """Charge the estimate and queue the job, atomically.

        `script` is a validated script dict (see `api/schemas.py`); the job records
        its normalised form. Raises InsufficientCredits when the balance cannot
        cover the estimate.
        """
        model = MovieScript.from_dict(script)
        normalised = model.to_dict()
        estimated = pricing.estimate(model)

        def submit() -> Submission:
            account = self.get_account(account_id)
            job = RenderJob(
                account_id=account_id,
                script=normalised,
                estimated_credits=estimated,
                quality=model.quality,
                webhook_uri=webhook_uri,
                origin=origin,
            )
            account.charge(job.id, estimated)
            self.save(account, job)
            return Submission(
                job_id=job.id,
                status=job.status,
                estimated_credits=estimated,
                credits_remaining=account.balance,
            )

        return self._retry_on_conflict(submit)

    # --- the render's life, as a worker drives it ---------------------------------

    def get_job(self, job_id: UUID) -> RenderJob:
        try:
            job = self.repository.get(job_id)
        except AggregateNotFoundError:
            raise JobNotFound(f"no job {job_id}") from None
        if not isinstance(job, RenderJob):
            raise JobNotFound(f"no job {job_id}")
        return job

    def job_history(self, job_id: UUID) -> list[dict[str, Any]]:
        """Every event of a job as stored: type, time, version and data."""
        return [describe(domain_event) for domain_event in self.events.get(job_id)]

    def start_job(self, job: RenderJob, worker: str, lease_seconds: float) -> None:
        """Record that `worker` renders the job now.

        Raises IllegalJobTransition if the job has ended or another worker holds it,
        and RecordConflictError if another worker started it at the same moment.
        """
        if job.status == "processing":
            job.take_over(worker, now=datetime.now(UTC), lease_seconds=lease_seconds)
        else:
            job.start(worker)
        self.save(job)

    def report_progress(self, job: RenderJob, progress: float, stage: str) -> None:
        job.report_progress(progress, stage)
        self.save(job)

    def complete_job(
        self,
        job_id: UUID,
        output_location: str,
        duration_seconds: float,
        file_size_bytes: int,
    ) -> RenderJob:
        """Record the finished render and refund what the estimate over-charged."""

        def complete() -> RenderJob:
            job = self.get_job(job_id)
            model = MovieScript.from_dict(job.script)
            used = pricing.settle(model, job.estimated_credits, duration_seconds)
            job.complete(
                output_location=output_location,
                duration_seconds=duration_seconds,
                file_size_bytes=file_size_bytes,
                credits_used=used,
            )
            self._save_with_refund(job, SETTLEMENT, reason="rendered duration below estimate")
            return job

        return self._retry_on_conflict(complete)

    def fail_job(self, job_id: UUID, code: str, message: str) -> RenderJob:
        """Record the failure and refund the whole charge, atomically."""

        def fail() -> RenderJob:
            job = self.get_job(job_id)
            job.fail(code, message)
            self._save_with_refund(job, FAILURE, reason=f"render failed: {code}")
            return job

        return self._retry_on_conflict(fail)

    def _save_with_refund(self, job: RenderJob, kind: str, reason: str) -> None:
        account = self.get_account(job.account_id)
        if job.refund_due:
            account.refund(job.id, job.refund_due, kind=kind, reason=reason)
        self.save(job, account)

    # --- concurrency --------------------------------------------------------------

    def _retry_on_conflict(self, attempt: Callable[[], T]) -> T:
        for retry in range(MAX_CONFLICT_RETRIES):
            try:
                return attempt()
            except RecordConflictError:
                # Another writer got there first. Back off a little (with jitter, so
                # racing writers spread out) and try again on fresh state.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**retry)))
        return attempt()
