"""Writing under contention: version conflicts retried, writes to one account queued.

Writes are optimistic. When two writers race on one aggregate, the event store's
unique (aggregate, version) constraint lets one through and the other meets a
`RecordConflictError`; `ConflictRetries.run` then runs the write again on fresh state
(with a little jittered back-off), so contention only costs time: a retried charge is
made against the new balance or refused, never lost or made twice.

Writes to one account would meet each other in conflict after conflict, so they queue:
inside a process on a striped lock (`local_lock`), across processes on the shared
account lock the infrastructure provides (`shared_lock`, a PostgreSQL advisory lock,
see adapters/pg_locks.py), taken by a write that has already met a conflict on the
account, and for a short while by every write to an account that did.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import RecordConflictError

T = TypeVar("T")

# A write retries its version conflicts this many times before a last try under the
# shared lock.
MAX_CONFLICT_RETRIES = 100
ACCOUNT_LOCK_STRIPES = 256
# After a conflict on an account, its writes in this process take the shared account
# lock from their first attempt for this long.
CONTENDED_SECONDS = 2.0
MAX_CONTENDED_ACCOUNTS = 1024

SharedLock = Callable[[UUID], AbstractContextManager[object]]


def no_shared_lock(_account_id: UUID) -> AbstractContextManager[object]:
    """The shared lock of a single process (the embedded default): none is needed."""
    return contextlib.nullcontext()


class ConflictRetries:
    def __init__(self) -> None:
        # Striped locks: bounded memory however many accounts there are; two accounts
        # sharing a stripe only wait for each other, they never conflict.
        self._local_locks = [threading.Lock() for _ in range(ACCOUNT_LOCK_STRIPES)]
        # A lock on one account shared by every process on this event store; the
        # infrastructure sets it.
        self.shared_lock: SharedLock = no_shared_lock
        self._contended: dict[UUID, float] = {}  # account -> when it last met a conflict

    def local_lock(self, account_id: UUID) -> threading.Lock:
        """One write at a time per account in this process: writes from one process then
        never conflict with each other (only with other processes), so a busy account is
        not slowed down by retries."""
        return self._local_locks[account_id.int % ACCOUNT_LOCK_STRIPES]

    def run(self, attempt: Callable[[], T], account_id: UUID | None = None) -> T:
        """`attempt()`, again on fresh state after each version conflict. With the
        `account_id` it writes to, retries queue on the shared account lock."""
        for retry in range(MAX_CONFLICT_RETRIES):
            try:
                if account_id is not None and (retry or self._is_contended(account_id)):
                    with self.shared_lock(account_id):
                        return attempt()
                return attempt()
            except RecordConflictError:
                if account_id is not None:
                    self._mark_contended(account_id)
                # Another writer got there first. Back off a little (with jitter, so
                # racing writers spread out) and try again on fresh state.
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**retry)))
        if account_id is None:
            return attempt()
        with self.shared_lock(account_id):
            return attempt()

    def _mark_contended(self, account_id: UUID) -> None:
        now = time.monotonic()
        if len(self._contended) >= MAX_CONTENDED_ACCOUNTS:  # forget the stale ones
            for stale, since in list(self._contended.items()):
                if now - since >= CONTENDED_SECONDS:
                    self._contended.pop(stale, None)
        self._contended[account_id] = now

    def _is_contended(self, account_id: UUID) -> bool:
        """Whether a write to the account met a conflict in the last
        CONTENDED_SECONDS: then even first attempts queue on the shared lock."""
        since = self._contended.get(account_id)
        if since is None:
            return False
        if time.monotonic() - since < CONTENDED_SECONDS:
            return True
        self._contended.pop(account_id, None)
        return False
