"""Idempotency keys: a retried submission returns the first answer and charges once.

A record per (account, key), whose id is derived from both, is saved in the same write
as the job and its charge. Two retries racing with the same key both try to create the
record; the event store lets one through, and the other, retrying, finds the record
and answers with its response. A key is bound to the request it first came with (a
hash of the route and body), and lives for 24 hours, after which it can be used again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from phantomflow.domain.errors import DomainError

KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255
_NAMESPACE = UUID("0d6c2a8e-3f4b-4c1e-9a6d-7b2e5f1c8a90")


class IdempotencyKeyReused(DomainError):
    """The key was first used with a different request."""


def request_fingerprint(route: str, body: Any) -> str:
    """A hash of what was asked: the same route and the same JSON, key order aside."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()


class IdempotencyRecord(Aggregate):
    @staticmethod
    def create_id(account_id: UUID, key: str) -> UUID:
        return uuid5(_NAMESPACE, f"{account_id}\n{key}")

    @event("Recorded")
    def __init__(
        self, account_id: UUID, key: str, fingerprint: str, response: dict[str, Any]
    ) -> None:
        self.account_id = account_id
        self.key = key
        self.fingerprint = fingerprint
        self.response = response

    def is_live(self, now: datetime) -> bool:
        return now - self.modified_on < KEY_LIFETIME

    def answer(self, fingerprint: str) -> dict[str, Any]:
        """The first response, if this is the same request."""
        if fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request; "
                "use a new key for a new request."
            )
        return self.response

    @event("Renewed")
    def renew(self, fingerprint: str, response: dict[str, Any]) -> None:
        """An expired key used again: it now stands for the new request."""
        self.fingerprint = fingerprint
        self.response = response
