"""API keys: `ve_live_…` keys spend credits, `ve_test_…` keys are the sandbox.

A key is shown once, when it is minted, and stored only as its SHA-256 hash. (A
slow password hash is not needed: keys carry 256 random bits, so nobody can guess
one from its hash.) Each key has an index aggregate whose id is derived from that
hash, so authenticating a request is one read by id, strongly consistent, with no
projection lag between `accounts create` and the first request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

LIVE = "live"
TEST = "test"
PREFIXES = {LIVE: "ve_live_", TEST: "ve_test_"}
_INDEX_NAMESPACE = UUID("6f1c1d1e-6a4b-4f7e-9a57-2f1b3a0c9d11")


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def mode_of(api_key: str) -> str | None:
    for mode, prefix in PREFIXES.items():
        if api_key.startswith(prefix):
            return mode
    return None


@dataclass(frozen=True)
class MintedKey:
    secret: str
    mode: str

    @property
    def display_prefix(self) -> str:
        return self.secret[: len(PREFIXES[self.mode]) + 4]


def mint(mode: str) -> MintedKey:
    return MintedKey(secret=PREFIXES[mode] + secrets.token_urlsafe(32), mode=mode)


class ApiKey(Aggregate):
    """Index from a key's hash to its account."""

    @staticmethod
    def create_id(key_hash: str) -> UUID:
        return uuid5(_INDEX_NAMESPACE, key_hash)

    @classmethod
    def id_for(cls, api_key: str) -> UUID:
        return cls.create_id(hash_key(api_key))

    @event("Issued")
    def __init__(self, key_hash: str, account_id: UUID, mode: str, prefix: str) -> None:
        self.key_hash = key_hash
        self.account_id = account_id
        self.mode = mode
        self.prefix = prefix
        self.revoked = False

    @event("Revoked")
    def revoke(self) -> None:
        self.revoked = True

    def matches(self, api_key: str) -> bool:
        return not self.revoked and hmac.compare_digest(self.key_hash, hash_key(api_key))
