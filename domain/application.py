"""The service layer: every change to jobs, accounts and keys goes through here.

`PhantomFlow` is an `eventsourcing` Application. It does no I/O of its own: its event
store is whatever infrastructure the environment names (SQLite for the embedded
default, PostgreSQL in production; see `adapters/persistence.py`).

Changes that touch two aggregates (a submission charges the account and creates the
job; a completion settles the job and refunds the difference) are saved in one call
to `save`, so they are recorded atomically or not at all. Optimistic concurrency
does the rest: when two requests race on one account, one of them meets a version
conflict, reloads and tries again against the new balance (`domain/concurrency.py`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording

from phantomflow.domain import pricing
from phantomflow.domain.accounts import (
    CANCELLATION,
    FAILURE,
    SETTLEMENT,
    CreditAccount,
    mint_webhook_secret,
)
from phantomflow.domain.concurrency import ConflictRetries
from phantomflow.domain.errors import AccountNotFound, JobNotFound
from phantomflow.domain.export_commands import ExportCommands
from phantomflow.domain.idempotency import IdempotencyRecord
from phantomflow.domain.jobs import RenderJob, WebhookAttempt
from phantomflow.domain.keys import LIVE, TEST, ApiKey, hash_key, mint, mode_of
from phantomflow.domain.previewing import PreviewUseCases
from phantomflow.domain.script import MovieScript
from phantomflow.domain.templates import (
    Template,
    TemplateChange,
    TemplateNotFound,
    TemplateVersion,
    history,
    template_ref,
)

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)

# Parsed scripts a process keeps, by job (see `PhantomFlow.script_of`).
SCRIPT_CACHE_SIZE = 256

# After a rotation, webhooks are signed with the old secret too for this long, so a
# receiver can switch to the new one without rejecting a delivery.
WEBHOOK_SECRET_GRACE = timedelta(hours=24)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account a key belongs to and whether it is live or sandbox."""

    account_id: UUID
    mode: str
    key_prefix: str

    @property
    def is_sandbox(self) -> bool:
        return self.mode == TEST


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
    # True when an idempotent retry is answered with the first submission.
    replayed: bool = False

    def as_record(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "estimated_credits": self.estimated_credits,
            "credits_remaining": self.credits_remaining,
        }


@dataclass(frozen=True)
class Quote:
    """What a submission would cost and leave, for a dry run that records nothing."""

    estimated_credits: int
    credits_remaining: int
    duration_seconds: float


class PhantomFlow(PreviewUseCases, ExportCommands, Application[UUID]):
    name = "PhantomFlow"

    # Keep recently used aggregates in memory; each read still fast-forwards from the
    # event store (the library's default), so a cached account is never stale, and
    # loading it costs one query for the events since, instead of a replay. The size
    # is a count, not bytes, and a job holds its whole script: a few hundred covers
    # the busy accounts and the jobs being rendered without letting large scripts
    # pile up.
    env: ClassVar[dict[str, str]] = {"AGGREGATE_CACHE_MAXSIZE": "256"}

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        # Version conflicts retried, and writes to one account queued (in this process,
        # and across processes on the shared lock the infrastructure sets).
        self.retries = ConflictRetries()
        self._on_recorded: list[Callable[[], None]] = []
        self._scripts: OrderedDict[UUID, MovieScript] = OrderedDict()
        self._scripts_lock = threading.Lock()

    def on_recorded(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (in the saving thread; it must be quick) after each save.

        For followers in the same process (the embedded system): they look at the log
        at once instead of at their next poll."""
        self._on_recorded.append(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        super()._notify(recordings)
        for listener in self._on_recorded:
            listener()

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
        live, live_index = self._mint_key(account, LIVE)
        test, test_index = self._mint_key(account, TEST)
        self.save(account, live_index, test_index)
        return OpenedAccount(account_id=account.id, api_key=live, test_api_key=test)

    def mint_key(self, account_id: UUID, mode: str) -> tuple[UUID, str, str]:
        """A new key for the account: (key id, the secret, shown only now, its prefix)."""

        def issue() -> tuple[UUID, str, str]:
            account = self.get_account(account_id)
            secret, index = self._mint_key(account, mode)
            self.save(account, index)
            return index.id, secret, index.prefix

        return self.retries.run(issue)

    def revoke_key(self, account_id: UUID, key_id: UUID) -> None:
        """Revoked at once: every API process reads the key's index on every request."""

        def revoke() -> None:
            account = self.get_account(account_id)
            account.revoke_api_key(key_id)
            index = self.repository.get(key_id)
            index.revoke()
            self.save(account, index)

        self.retries.run(revoke)

    @staticmethod
    def _mint_key(account: CreditAccount, mode: str) -> tuple[str, ApiKey]:
        key = mint(mode)
        index = ApiKey(
            key_hash=hash_key(key.secret),
            account_id=account.id,
            mode=key.mode,
            prefix=key.display_prefix,
        )
        account.record_api_key(prefix=key.display_prefix, mode=key.mode, key_id=index.id)
        return key.secret, index

    def grant_credits(self, account_id: UUID, amount: int, reason: str) -> int:
        def grant() -> int:
            account = self.get_account(account_id)
            account.grant(amount, reason=reason)
            self.save(account)
            return account.balance

        return self.retries.run(grant, account_id)

    def change_plan(
        self,
        account_id: UUID,
        plan: str,
        requests_per_minute: int | None = None,
        concurrent_jobs: int | None = None,
    ) -> CreditAccount:
        def change() -> CreditAccount:
            account = self.get_account(account_id)
            account.change_plan(plan, requests_per_minute, concurrent_jobs)
            self.save(account)
            return account

        return self.retries.run(change)

    def get_account(self, account_id: UUID) -> CreditAccount:
        account = self._find(account_id, CreditAccount)
        if account is None:
            raise AccountNotFound(f"no account {account_id}")
        return account

    def authenticate(self, api_key: str) -> Principal | None:
        if mode_of(api_key) is None:
            return None
        index = self._find(ApiKey.id_for(api_key), ApiKey)
        if index is None or not index.matches(api_key):
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
        script: MovieScript,
        webhook_uri: str | None,
        origin: dict[str, Any],
        idempotency: tuple[str, str] | None = None,
        sandbox: bool = False,
        exports: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Submission:
        """Charge the estimate and queue the job, atomically.

        `script` is a validated script (see `api/schemas.py`); the job records it as a
        dict with every default filled in. Raises InsufficientCredits when the balance cannot
        cover the estimate. With `idempotency` = (key, request fingerprint), a
        repeat of the same request within 24 h returns the first submission
        (`replayed=True`) and charges nothing; IdempotencyKeyReused if the key came
        with a different request. A `sandbox` job is validated and priced the same
        but charges nothing and counts against no limit. `exports` are the
        validated export targets; each must name a usable integration of its type
        (else ExportTargetInvalid, and nothing is recorded). `metadata` is the client's
        own object (domain/metadata.py), kept with the job.
        """
        recorded = script.to_dict()
        estimated = pricing.estimate(script)
        if exports:
            self.check_export_targets(account_id, sandbox, exports)

        def submit() -> Submission:
            with self.retries.local_lock(account_id):
                return submit_once()

        def submit_once() -> Submission:
            record = self._idempotency_record(account_id, idempotency)
            if record is not None and record.is_live(datetime.now(UTC)):
                assert idempotency is not None
                return Submission(**record.answer(idempotency[1]), replayed=True)
            account = self.get_account(account_id)
            job = RenderJob(
                account_id=account_id,
                script=recorded,
                estimated_credits=estimated,
                quality=script.quality,
                webhook_uri=webhook_uri,
                origin=origin,
                sandbox=sandbox,
                exports=exports or None,
                metadata=metadata or {},
            )
            if not sandbox:
                account.charge(job.id, estimated)
            submission = Submission(
                job_id=job.id,
                status=job.status,
                estimated_credits=estimated,
                credits_remaining=account.balance,
            )
            if idempotency is None:
                self.save(account, job)  # a sandbox account has no new events: a no-op
            else:
                key, fingerprint = idempotency
                response = submission.as_record()
                if record is None:
                    record = IdempotencyRecord(account_id, key, fingerprint, response)
                else:
                    record.renew(fingerprint, response)
                self.save(account, job, record)
            self._remember_script(job.id, script)
            return submission

        return self.retries.run(submit, account_id)

    def quote_render(self, account_id: UUID, script: MovieScript, sandbox: bool = False) -> Quote:
        """A dry run of `submit_render`: the same price and the same refusals
        (InsufficientCredits, ConcurrencyLimitExceeded) against the account as it is
        now, and nothing recorded. A sandbox quote, like a sandbox job, charges nothing
        and meets no limit."""
        estimated = pricing.estimate(script)
        account = self.get_account(account_id)
        if sandbox:
            return Quote(estimated, account.balance, script.duration)
        account.check_can_afford(estimated)
        return Quote(estimated, account.balance - estimated, script.duration)

    def _idempotency_record(
        self, account_id: UUID, idempotency: tuple[str, str] | None
    ) -> IdempotencyRecord | None:
        if idempotency is None:
            return None
        return self._find(
            IdempotencyRecord.create_id(account_id, idempotency[0]), IdempotencyRecord
        )

    # --- the render's life, as a worker drives it ---------------------------------

    def get_job(self, job_id: UUID) -> RenderJob:
        job = self._find(job_id, RenderJob)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return job

    def script_of(self, job: RenderJob) -> MovieScript:
        """The job's script as values, parsed once per process (a job's script never
        changes): a worker parses it to render and prices the render from the same."""
        with self._scripts_lock:
            script = self._scripts.get(job.id)
            if script is not None:
                self._scripts.move_to_end(job.id)
                return script
        script = MovieScript.from_dict(job.script)
        self._remember_script(job.id, script)
        return script

    def _remember_script(self, job_id: UUID, script: MovieScript) -> None:
        with self._scripts_lock:
            self._scripts[job_id] = script
            self._scripts.move_to_end(job_id)
            while len(self._scripts) > SCRIPT_CACHE_SIZE:
                self._scripts.popitem(last=False)

    def start_job(self, job: RenderJob, worker: str, lease_seconds: float) -> None:
        """Record that `worker` renders the job now, holding a lease of `lease_seconds`
        (it shows a sign of life at least that often; see `renew_lease`).

        Raises IllegalJobTransition if the job has ended or another worker holds it,
        and RecordConflictError if another worker started it at the same moment.
        """
        if job.status == "processing":
            job.take_over(worker, now=datetime.now(UTC), lease_seconds=lease_seconds)
        else:
            job.start(worker, lease_seconds)
        self.save(job)

    def report_progress(
        self,
        job: RenderJob,
        progress: float,
        stage: str,
        media_cache: dict[str, int] | None = None,
    ) -> None:
        job.report_progress(progress, stage, media_cache)
        self.save(job)

    def renew_lease(self, job: RenderJob, worker: str, attempt: int) -> None:
        """A sign of life from the attempt rendering `job`. Raises IllegalJobTransition
        if it is no longer the job's attempt, RecordConflictError if `job` is stale."""
        job.renew_lease(worker, attempt)
        self.save(job)

    def complete_job(
        self,
        job_id: UUID,
        output_location: str,
        duration_seconds: float,
        file_size_bytes: int,
        poster_location: str | None = None,
        attempt: int | None = None,
    ) -> RenderJob:
        """Record the finished render and refund what the estimate over-charged. With
        `attempt`, only while that attempt is the job's current one (IllegalJobTransition
        otherwise): an attempt that was taken over never completes or settles the job."""

        def complete() -> RenderJob:
            job = self.get_job(job_id)
            used = (
                0
                if job.sandbox
                else pricing.settle(self.script_of(job), job.estimated_credits, duration_seconds)
            )
            job.complete(
                output_location=output_location,
                duration_seconds=duration_seconds,
                file_size_bytes=file_size_bytes,
                credits_used=used,
                poster_location=poster_location,
                attempt=attempt,
            )
            self._save_with_refund(job, SETTLEMENT, reason="rendered duration below estimate")
            return job

        return self.retries.run(complete)

    def cancel_job(self, job_id: UUID, reason: str = "cancelled by the customer") -> RenderJob:
        """Cancel a queued or processing job and refund by the cancellation rule
        (`pricing.cancellation_charge`), atomically. Its worker notices at its next
        progress report and stops."""

        def cancel() -> RenderJob:
            job = self.get_job(job_id)
            used = (
                0
                if job.sandbox or job.status == "queued"
                else pricing.cancellation_charge(
                    self.script_of(job), job.estimated_credits, job.progress
                )
            )
            job.cancel(credits_used=used, reason=reason)
            self._save_with_refund(job, CANCELLATION, reason=reason)
            return job

        return self.retries.run(cancel)

    def fail_job(
        self, job_id: UUID, code: str, message: str, attempt: int | None = None
    ) -> RenderJob:
        """Record the failure and refund the whole charge, atomically; with `attempt`,
        only while that attempt is the job's current one."""

        def fail() -> RenderJob:
            job = self.get_job(job_id)
            job.fail(code, message, attempt)
            self._save_with_refund(job, FAILURE, reason=f"render failed: {code}")
            return job

        return self.retries.run(fail)

    def _save_with_refund(self, job: RenderJob, kind: str, reason: str) -> None:
        if job.sandbox:  # never charged, so nothing to refund or release
            self.save(job)
            return
        account = self.get_account(job.account_id)
        if job.refund_due:
            account.refund(job.id, job.refund_due, kind=kind, reason=reason)
        account.release(job.id)
        self.save(job, account)

    # --- webhooks -----------------------------------------------------------------

    def webhook_secret(self, account_id: UUID, mode: str = LIVE) -> str:
        """The account's webhook signing secret for live or sandbox jobs, created (as an
        event) on first use."""
        return self._ensure_webhook_secret(account_id, mode).current_webhook_secret(mode) or ""

    def webhook_signing_secrets(
        self, account_id: UUID, now: datetime, mode: str = LIVE
    ) -> list[str]:
        """What a webhook sent at `now` is signed with: the secret, and the previous one
        while its grace period after a rotation lasts."""
        return self._ensure_webhook_secret(account_id, mode).webhook_signing_secrets(now, mode)

    def rotate_webhook_secret(
        self, account_id: UUID, grace: timedelta = WEBHOOK_SECRET_GRACE, mode: str = LIVE
    ) -> tuple[str, datetime]:
        """Replace the secret; return it and when the previous one stops signing."""

        def rotate() -> tuple[str, datetime]:
            account = self._ensure_webhook_secret(account_id, mode)
            expires = datetime.now(UTC) + grace
            account.rotate_webhook_secret(
                mint_webhook_secret(), previous_expires=expires, mode=mode
            )
            self.save(account)
            return account.current_webhook_secret(mode) or "", expires

        return self.retries.run(rotate)

    def _ensure_webhook_secret(self, account_id: UUID, mode: str) -> CreditAccount:
        def ensure() -> CreditAccount:
            account = self.get_account(account_id)
            if account.current_webhook_secret(mode) is None:
                account.create_webhook_secret(mint_webhook_secret(), mode)
                self.save(account)
            return account

        return self.retries.run(ensure)

    def record_webhook_attempt(self, job_id: UUID, attempt: WebhookAttempt) -> RenderJob:
        """Log one webhook POST on its job. Raises IllegalJobTransition if that attempt
        (trigger, sequence) is already logged."""

        def record() -> RenderJob:
            job = self.get_job(job_id)
            job.record_webhook_attempt(attempt)
            self.save(job)
            return job

        return self.retries.run(record)

    def request_webhook_redelivery(self, job_id: UUID) -> int:
        """Record a request to send the ended job's webhook again (the webhook follower
        turns it into a delivery); return the request's number."""

        def request() -> int:
            job = self.get_job(job_id)
            number = job.request_webhook_redelivery()
            self.save(job)
            return number

        return self.retries.run(request)

    # --- templates ----------------------------------------------------------------
    # Access is decided on a template's current state (see domain/templates.py); the
    # API maps TemplateNotFound and NotTemplateOwner to its error codes.

    def create_template(
        self, owner_id: UUID, name: str, script: dict[str, Any], is_public: bool
    ) -> TemplateChange:
        template = Template.create(owner_id, name, script, is_public)
        return TemplateChange(template, _last_position(self.save(template)))

    def get_template(self, template_id: UUID, reader: UUID, version: int | None = None) -> Template:
        """The template as `reader` may see it: the latest version, or `version`."""
        current = self._load_template(template_id)
        current.check_readable_by(reader)
        if version is None or version == current.version:
            return current
        if not 1 <= version < current.version:
            raise TemplateNotFound(f"Template {current.ref} has no version {version}.")
        found: Template = self.repository.get(template_id, version=version)
        return found

    def template_history(self, template_id: UUID, reader: UUID) -> list[TemplateVersion]:
        self._load_template(template_id).check_readable_by(reader)
        return history(list(self.events.get(template_id)))

    def update_template(
        self,
        template_id: UUID,
        editor: UUID,
        name: str | None = None,
        script: dict[str, Any] | None = None,
        is_public: bool | None = None,
    ) -> TemplateChange:
        """Change the fields given; a change that changes nothing records nothing."""

        def update() -> TemplateChange:
            template = self._load_template(template_id)
            template.check_changeable_by(editor)
            if not template.update(name=name, script=script, is_public=is_public):
                return TemplateChange(template, None)
            return TemplateChange(template, _last_position(self.save(template)))

        return self.retries.run(update)

    def delete_template(self, template_id: UUID, editor: UUID) -> TemplateChange:
        def delete() -> TemplateChange:
            template = self._load_template(template_id)
            template.check_changeable_by(editor)
            template.delete()
            return TemplateChange(template, _last_position(self.save(template)))

        return self.retries.run(delete)

    def _load_template(self, template_id: UUID) -> Template:
        template = self._find(template_id, Template)
        if template is None:
            raise TemplateNotFound(f"No template {template_ref(template_id)}.")
        return template

    def _find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """The aggregate of that kind with that id, or None."""
        try:
            found = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None


def _last_position(recordings: list[Any]) -> int | None:
    """Where the last of a save's events landed in the application sequence."""
    return max((r.notification.id for r in recordings), default=None)
