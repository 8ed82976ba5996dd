"""The credit account: a balance that only events move, and that never goes below zero.

Every movement names its reason and, for charges and refunds, the job it belongs to,
so the ledger can explain each credit. A job is charged at most once, and the refunds
for a job never add up to more than its charge.
"""

from __future__ import annotations

import base64
import copy
import secrets
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from phantomflow.domain.assets import AssetInUse, StorageLimitExceeded, asset_ref, content_slot
from phantomflow.domain.errors import (
    ConcurrencyLimitExceeded,
    DomainError,
    DuplicateCharge,
    InsufficientCredits,
)
from phantomflow.domain.keys import LIVE, TEST
from phantomflow.domain.plans import PLAN_LIMITS, PLANS, STORAGE_LIMITS, PlanLimits

# Why credits came back: the unused part of an estimate once the real duration is
# known, a failed render, or a job the customer cancelled.
SETTLEMENT = "settlement"
FAILURE = "failure"
CANCELLATION = "cancellation"
REFUND_KINDS = (SETTLEMENT, FAILURE, CANCELLATION)


class CreditAccount(Aggregate):
    @event("Opened")
    def __init__(self, plan: str) -> None:
        if plan not in PLANS:
            raise DomainError(f"unknown plan {plan!r}; plans are {', '.join(PLANS)}")
        self.plan = plan
        # Enterprise accounts' own limits (plain ints, so snapshots can store them).
        self.custom_requests_per_minute: int | None = None
        self.custom_concurrent_jobs: int | None = None
        self.balance = 0
        self.charges: dict[str, int] = {}
        self.refunds: dict[str, int] = {}
        # Jobs charged and not yet ended: what the plan's concurrency limit counts.
        self.active_jobs: list[str] = []
        self.api_key_prefixes: list[str] = []
        # key id -> {"prefix", "mode", "revoked"}; secrets are never kept.
        self.api_keys: dict[str, dict[str, object]] = {}
        # The secret webhooks are signed with (see `adapters/webhooks.py`), and the one it
        # replaced, which still signs until `previous_webhook_secret_expires`.
        self.webhook_secret: str | None = None
        self.previous_webhook_secret: str | None = None
        self.previous_webhook_secret_expires: datetime | None = None

    # Attributes that hold containers of immutable values (strings, ints, frozen
    # events): copying the container is a deep copy. `api_keys` nests one level more.
    _FLAT_CONTAINERS = (
        "charges",
        "refunds",
        "active_jobs",
        "api_key_prefixes",
        "_pending_events",
    )

    def __deepcopy__(self, memo: dict[int, Any]) -> CreditAccount:
        """The same as `copy.deepcopy`'s generic walk, at the cost of a few C-level
        container copies.

        The aggregate cache hands out a deep copy of the account on every read. The
        generic walk visits every entry of `charges` and `active_jobs`, so for an
        account with a few thousand queued jobs it was most of a submission's CPU
        (docs/performance.md)."""
        copied = copy.copy(self)
        state = vars(copied)
        for name in self._FLAT_CONTAINERS:
            state[name] = state[name].copy()
        state["api_keys"] = {key_id: dict(entry) for key_id, entry in self.api_keys.items()}
        memo[id(self)] = copied
        return copied

    # --- plan -------------------------------------------------------------------

    @property
    def limits(self) -> PlanLimits:
        default = PLAN_LIMITS[self.plan]
        return PlanLimits(
            requests_per_minute=self.custom_requests_per_minute or default.requests_per_minute,
            concurrent_jobs=self.custom_concurrent_jobs or default.concurrent_jobs,
            previews_per_minute=default.previews_per_minute,
        )

    def change_plan(
        self,
        plan: str,
        requests_per_minute: int | None = None,
        concurrent_jobs: int | None = None,
        storage_bytes: int | None = None,
    ) -> None:
        """Move to a plan; enterprise accounts may carry limits of their own."""
        if plan not in PLANS:
            raise DomainError(f"unknown plan {plan!r}; plans are {', '.join(PLANS)}")
        custom = (requests_per_minute, concurrent_jobs, storage_bytes) != (None, None, None)
        if custom and plan != "enterprise":
            raise DomainError("only the enterprise plan has custom limits")
        for value in (requests_per_minute, concurrent_jobs, storage_bytes):
            if value is not None and value < 1:
                raise DomainError("limits must be at least 1")
        self._plan_changed(
            plan=plan,
            requests_per_minute=requests_per_minute,
            concurrent_jobs=concurrent_jobs,
            storage_bytes=storage_bytes,
        )

    @event("PlanChanged")
    def _plan_changed(
        self,
        plan: str,
        requests_per_minute: int | None,
        concurrent_jobs: int | None,
        storage_bytes: int | None = None,
    ) -> None:
        self.plan = plan
        self.custom_requests_per_minute = requests_per_minute
        self.custom_concurrent_jobs = concurrent_jobs
        self.custom_storage_bytes = storage_bytes

    # --- stored assets (domain/assets.py) -------------------------------------------
    # Accounts opened or snapshotted before assets existed have none of these
    # attributes: these class-level values stand in for them. The containers are
    # replaced, never changed in place, so the shared defaults (and the shallow copies
    # `__deepcopy__` makes of them) are never written to.
    custom_storage_bytes: int | None = None
    storage_used: int = 0
    # content_slot(sandbox, sha256) -> [asset id, size]
    # (Unannotated: the aggregate is a dataclass, which refuses a mutable default.)
    stored_assets = cast("dict[str, list[Any]]", {})
    # job id -> the asset ids it holds while queued or processing
    asset_holds = cast("dict[str, list[str]]", {})

    @property
    def storage_limit_bytes(self) -> int:
        return self.custom_storage_bytes or STORAGE_LIMITS[self.plan].storage_bytes

    @property
    def max_file_bytes(self) -> int:
        return STORAGE_LIMITS[self.plan].max_file_bytes

    def stored_asset(self, sandbox: bool, sha256: str) -> UUID | None:
        """The account's asset of this content in this key mode, if it has one."""
        found = self.stored_assets.get(content_slot(sandbox, sha256))
        return UUID(found[0]) if found else None

    def check_storage(self, required_bytes: int) -> None:
        """Raise StorageLimitExceeded unless `required_bytes` more fit the plan."""
        if self.storage_used + required_bytes > self.storage_limit_bytes:
            raise StorageLimitExceeded(
                used_bytes=self.storage_used,
                limit_bytes=self.storage_limit_bytes,
                required_bytes=required_bytes,
            )

    def store_asset(self, asset_id: UUID, sandbox: bool, sha256: str, size: int) -> None:
        if self.stored_asset(sandbox, sha256) is not None:
            raise DomainError(f"the account already holds content {sha256}")
        self.check_storage(size)
        self._asset_stored(asset_id=asset_id, sandbox=sandbox, sha256=sha256, size=size)

    @event("AssetStored")
    def _asset_stored(self, asset_id: UUID, sandbox: bool, sha256: str, size: int) -> None:
        self.stored_assets = {
            **self.stored_assets,
            content_slot(sandbox, sha256): [str(asset_id), size],
        }
        self.storage_used += size

    def remove_asset(self, asset_id: UUID, sandbox: bool, sha256: str) -> None:
        """Give the asset's bytes back; AssetInUse while a job holds it."""
        holders = [job for job, held in self.asset_holds.items() if str(asset_id) in held]
        if holders:
            raise AssetInUse(asset_ref(asset_id), holders)
        if self.stored_asset(sandbox, sha256) != asset_id:
            raise DomainError(f"asset {asset_id} is not stored on this account")
        self._asset_removed(asset_id=asset_id, sandbox=sandbox, sha256=sha256)

    @event("AssetRemoved")
    def _asset_removed(self, asset_id: UUID, sandbox: bool, sha256: str) -> None:
        slots = dict(self.stored_assets)
        _, size = slots.pop(content_slot(sandbox, sha256))
        self.stored_assets = slots
        self.storage_used -= size

    def hold_assets(self, job_id: UUID, asset_ids: list[UUID]) -> UUID | None:
        """The job uses these assets until it ends: none can be deleted meanwhile.
        Returns the first that is no longer stored (deleted since it was checked), and
        records nothing then."""
        live = {found[0] for found in self.stored_assets.values()}
        for asset_id in asset_ids:
            if str(asset_id) not in live:
                return asset_id
        self._assets_held(job_id=job_id, asset_ids=[str(a) for a in dict.fromkeys(asset_ids)])
        return None

    @event("AssetsHeld")
    def _assets_held(self, job_id: UUID, asset_ids: list[str]) -> None:
        self.asset_holds = {**self.asset_holds, str(job_id): list(asset_ids)}

    def release_assets(self, job_id: UUID) -> None:
        """The job has ended: its assets may be deleted (nothing if it held none)."""
        if str(job_id) in self.asset_holds:
            self._assets_released(job_id=job_id)

    @event("AssetsReleased")
    def _assets_released(self, job_id: UUID) -> None:
        holds = dict(self.asset_holds)
        holds.pop(str(job_id), None)
        self.asset_holds = holds

    # --- grants -------------------------------------------------------------------

    def grant(self, amount: int, reason: str) -> None:
        if amount <= 0:
            raise DomainError("a grant must be a positive number of credits")
        self._granted(amount=amount, reason=reason)

    @event("CreditsGranted")
    def _granted(self, amount: int, reason: str) -> None:
        self.balance += amount

    # --- charges and refunds ------------------------------------------------------

    def charge(self, job_id: UUID, amount: int) -> None:
        if str(job_id) in self.charges:
            raise DuplicateCharge(f"job {job_id} is already charged")
        if amount <= 0:
            raise DomainError("a charge must be a positive number of credits")
        self.check_can_afford(amount)
        self._charged(job_id=job_id, amount=amount)

    def check_can_afford(self, amount: int) -> None:
        """Raise what a charge of `amount` for a new job would raise: the balance, then
        the plan's concurrent jobs. A dry run asks this without charging."""
        if amount > self.balance:
            raise InsufficientCredits(required=amount, balance=self.balance)
        if len(self.active_jobs) >= self.limits.concurrent_jobs:
            raise ConcurrencyLimitExceeded(self.limits.concurrent_jobs)

    @event("CreditsCharged")
    def _charged(self, job_id: UUID, amount: int) -> None:
        self.balance -= amount
        self.charges[str(job_id)] = amount
        self.active_jobs.append(str(job_id))

    def release(self, job_id: UUID) -> None:
        """The job has ended: it no longer counts against the concurrency limit."""
        if str(job_id) not in self.active_jobs:
            raise DomainError(f"job {job_id} is not active on this account")
        self._released(job_id=job_id)

    @event("JobReleased")
    def _released(self, job_id: UUID) -> None:
        # A finished job is settled for good: forgetting its charge and refunds keeps
        # the account's state (and its snapshots) the size of its active jobs, not of
        # its whole history. The ledger keeps the history.
        key = str(job_id)
        self.active_jobs.remove(key)
        self.charges.pop(key, None)
        self.refunds.pop(key, None)

    def refund(self, job_id: UUID, amount: int, kind: str, reason: str) -> None:
        if kind not in REFUND_KINDS:
            raise DomainError(f"unknown refund kind {kind!r}")
        charged = self.charges.get(str(job_id))
        if charged is None:
            raise DomainError(f"job {job_id} was never charged to this account")
        if amount <= 0:
            raise DomainError("a refund must be a positive number of credits")
        if self.refunds.get(str(job_id), 0) + amount > charged:
            raise DuplicateCharge(f"job {job_id} would be refunded more than it was charged")
        self._refunded(job_id=job_id, amount=amount, kind=kind, reason=reason)

    @event("CreditsRefunded")
    def _refunded(self, job_id: UUID, amount: int, reason: str, kind: str = SETTLEMENT) -> None:
        self.balance += amount
        key = str(job_id)
        self.refunds[key] = self.refunds.get(key, 0) + amount

    # --- API keys -----------------------------------------------------------------

    @event("ApiKeyIssued")
    def record_api_key(self, prefix: str, mode: str, key_id: UUID | None = None) -> None:
        """Only the key's display prefix lives on the account; the hash lives on its index
        (`domain/keys.py`), whose id is `key_id`."""
        self.api_key_prefixes.append(prefix)
        if key_id is not None:
            self.api_keys[str(key_id)] = {"prefix": prefix, "mode": mode, "revoked": False}

    def revoke_api_key(self, key_id: UUID) -> None:
        found = self.api_keys.get(str(key_id))
        if found is None:
            raise DomainError(f"no key {key_id} on this account")
        if found["revoked"]:
            raise DomainError(f"key {key_id} is already revoked")
        self._api_key_revoked(key_id=key_id)

    @event("ApiKeyRevoked")
    def _api_key_revoked(self, key_id: UUID) -> None:
        self.api_keys[str(key_id)]["revoked"] = True

    # --- webhook signing secrets ---------------------------------------------------
    # One secret per mode: sandbox jobs' webhooks are signed with the sandbox secret, so
    # a sandbox key, which may read and rotate that one, can never sign like the live
    # account. Accounts snapshotted before sandbox secrets existed have no such
    # attributes: these class-level values stand in for them.
    sandbox_webhook_secret: str | None = None
    previous_sandbox_webhook_secret: str | None = None
    previous_sandbox_webhook_secret_expires: datetime | None = None

    def current_webhook_secret(self, mode: str = LIVE) -> str | None:
        return getattr(self, _secret_attributes(mode)[0])

    def create_webhook_secret(self, secret: str, mode: str = LIVE) -> None:
        if self.current_webhook_secret(mode) is not None:
            raise DomainError("the account already has a webhook secret; rotate it instead")
        self._webhook_secret_created(secret=secret, mode=mode)

    @event("WebhookSecretCreated")
    def _webhook_secret_created(self, secret: str, mode: str = LIVE) -> None:
        setattr(self, _secret_attributes(mode)[0], secret)

    def rotate_webhook_secret(
        self, secret: str, previous_expires: datetime, mode: str = LIVE
    ) -> None:
        """Replace the secret; the old one keeps signing (beside the new) until
        `previous_expires`, so receivers can switch without dropping a delivery."""
        current = self.current_webhook_secret(mode)
        if current is None:
            raise DomainError("the account has no webhook secret to rotate")
        if secret == current:
            raise DomainError("the new webhook secret must differ from the current one")
        self._webhook_secret_rotated(secret=secret, previous_expires=previous_expires, mode=mode)

    @event("WebhookSecretRotated")
    def _webhook_secret_rotated(
        self, secret: str, previous_expires: datetime | None = None, mode: str = LIVE
    ) -> None:
        current, previous, expires = _secret_attributes(mode)
        setattr(self, previous, getattr(self, current))
        setattr(self, expires, previous_expires)
        setattr(self, current, secret)

    def webhook_signing_secrets(self, now: datetime, mode: str = LIVE) -> list[str]:
        """The secrets a webhook sent at `now` is signed with: current first."""
        current, previous, expires = (getattr(self, name) for name in _secret_attributes(mode))
        found = [current] if current else []
        if previous and expires is not None and now < expires:
            found.append(previous)
        return found


def _secret_attributes(mode: str) -> tuple[str, str, str]:
    """The account's attributes holding a mode's secret, previous secret and its expiry."""
    if mode not in (LIVE, TEST):
        raise DomainError(f"unknown key mode {mode!r}")
    infix = "" if mode == LIVE else "sandbox_"
    return (
        f"{infix}webhook_secret",
        f"previous_{infix}webhook_secret",
        f"previous_{infix}webhook_secret_expires",
    )


WEBHOOK_SECRET_PREFIX = "whsec_"


def mint_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
