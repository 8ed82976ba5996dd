"""The credit account: a balance that only events move, and that never goes below zero.

Every movement names its reason and, for charges and refunds, the job it belongs to,
so the ledger can explain each credit. A job is charged at most once, and the refunds
for a job never add up to more than its charge.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError, DuplicateCharge, InsufficientCredits

PLANS = ("free", "starter", "pro", "enterprise")

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
        self.balance = 0
        self.charges: dict[str, int] = {}
        self.refunds: dict[str, int] = {}
        self.api_key_prefixes: list[str] = []

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
        if amount > self.balance:
            raise InsufficientCredits(required=amount, balance=self.balance)
        self._charged(job_id=job_id, amount=amount)

    @event("CreditsCharged")
    def _charged(self, job_id: UUID, amount: int) -> None:
        self.balance -= amount
        self.charges[str(job_id)] = amount

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
    def record_api_key(self, prefix: str, mode: str) -> None:
        """Only the key's display prefix lives on the account; the hash lives on its index."""
        self.api_key_prefixes.append(prefix)
