"""Plans: how many requests a minute and how many jobs at once an account may have, and
how many previews it may ask for a minute.

The contract's Rate Limits table; enterprise limits are set per account (the numbers
below are its defaults until an operator sets them). Previews are free, so they have a
limit of their own (beyond the contract), counted apart from the requests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanLimits:
    requests_per_minute: int
    concurrent_jobs: int
    previews_per_minute: int


PLAN_LIMITS: dict[str, PlanLimits] = {
    "free": PlanLimits(requests_per_minute=10, concurrent_jobs=2, previews_per_minute=5),
    "starter": PlanLimits(requests_per_minute=60, concurrent_jobs=5, previews_per_minute=20),
    "pro": PlanLimits(requests_per_minute=120, concurrent_jobs=10, previews_per_minute=60),
    "enterprise": PlanLimits(requests_per_minute=600, concurrent_jobs=50, previews_per_minute=120),
}
PLANS = tuple(PLAN_LIMITS)
