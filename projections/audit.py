"""`phantomflow audit verify`: does every credit add up, three ways?

For each account the balance is computed three independent ways and must agree:

- replayed: the account aggregate rebuilt from its own events (the source of truth);
- ledger: the last running balance in the ledger read model;
- from jobs: the account's grants minus what each of its jobs cost according to the
  job's own events (the estimate while the job runs, `credits_used` once it ends).

The third way checks charges and refunds against the jobs they name: a refund without
its job's ending, or a job that ended without its refund, shows up as a difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from phantomflow.adapters.topics import topics_of
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.jobs import RenderJob
from phantomflow.projections.ledger import LedgerQueries

_TOPICS = topics_of(
    CreditAccount.Opened,
    CreditAccount.CreditsGranted,
    RenderJob.Submitted,
    RenderJob.Completed,
    RenderJob.Failed,
    RenderJob.Cancelled,
)
PAGE = 5000


@dataclass(frozen=True)
class AccountCheck:
    account_id: str
    replayed: int
    ledger: int
    from_jobs: int

    @property
    def agrees(self) -> bool:
        return self.replayed == self.ledger == self.from_jobs


@dataclass
class _Job:
    account_id: str
    estimated: int
    used: int | None = None

    @property
    def cost(self) -> int:
        return self.estimated if self.used is None else self.used


def reconcile(app: PhantomFlow, ledger: LedgerQueries) -> list[AccountCheck]:
    grants: dict[str, int] = defaultdict(int)
    jobs: dict[str, _Job] = {}
    for event in _events(app):
        key = str(event.originator_id)
        if isinstance(event, CreditAccount.Opened):
            grants[key] += 0  # an account with no grants is still checked
        elif isinstance(event, CreditAccount.CreditsGranted):
            grants[key] += event.amount
        elif isinstance(event, RenderJob.Submitted):
            # A sandbox job charges nothing (its estimate is only shown), so it is
            # none of the reconciliation's business.
            if not getattr(event, "sandbox", False):
                jobs[key] = _Job(str(event.account_id), event.estimated_credits)
        elif key not in jobs:
            continue
        elif isinstance(event, RenderJob.Completed):
            jobs[key].used = event.credits_used
        elif isinstance(event, RenderJob.Failed):
            jobs[key].used = 0
        elif isinstance(event, RenderJob.Cancelled):
            jobs[key].used = event.credits_used

    costs: dict[str, int] = defaultdict(int)
    for job in jobs.values():
        costs[job.account_id] += job.cost
    ledger_balances = ledger.balances()
    return [
        AccountCheck(
            account_id=account_id,
            replayed=app.get_account(UUID(account_id)).balance,
            ledger=ledger_balances.get(account_id, 0),
            from_jobs=granted - costs[account_id],
        )
        for account_id, granted in sorted(grants.items())
    ]


def _events(app: PhantomFlow) -> Iterator[Any]:
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=PAGE, topics=_TOPICS)
        for notification in page:
            yield app.mapper.to_domain_event(notification)
        if len(page) < PAGE:
            return
        start = page[-1].id + 1


def report(checks: list[AccountCheck]) -> str:
    lines = [f"{'account':36}  {'replayed':>10}  {'ledger':>10}  {'from jobs':>10}  result"]
    for check in checks:
        lines.append(
            f"{check.account_id:36}  {check.replayed:>10}  {check.ledger:>10}  "
            f"{check.from_jobs:>10}  {'ok' if check.agrees else 'DIFFERENCE'}"
        )
    differences = sum(not check.agrees for check in checks)
    lines.append(f"{len(checks)} accounts, {differences} with differences")
    return "\n".join(lines)
