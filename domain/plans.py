"""Plans: how many requests a minute and how many jobs at once an account may have, and
how many previews it may ask for a minute; how much it may keep in its media library.

The contract's Rate Limits table; enterprise limits are set per account (the numbers
below are its defaults until an operator sets them). Previews are free, so they have a
limit of their own (beyond the contract), counted apart from the requests.

Storage (uploaded assets, docs/api.md "Assets") follows RenderingVideo's plans: the
bytes an account may keep, and the largest single file it may upload. An enterprise
account's storage is set per account (`phantomflow accounts plan --storage-bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
GB = 1024 * MB


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


@dataclass(frozen=True)
class StorageLimits:
    storage_bytes: int  # all of an account's assets together
    max_file_bytes: int  # one uploaded file


STORAGE_LIMITS: dict[str, StorageLimits] = {
    "free": StorageLimits(storage_bytes=512 * MB, max_file_bytes=100 * MB),
    "starter": StorageLimits(storage_bytes=10 * GB, max_file_bytes=1 * GB),
    "pro": StorageLimits(storage_bytes=50 * GB, max_file_bytes=2 * GB),
    # The default until an operator sets the account's own storage.
    "enterprise": StorageLimits(storage_bytes=100 * GB, max_file_bytes=5 * GB),
}
