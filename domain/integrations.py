"""Integrations: an account's stored credentials for one export destination.

A script's `exports` name an integration by id (`int_…`), never carry credentials. The
integration holds the destination's settings (host, bucket, user name…) in the clear
and its secrets (passwords, keys, tokens) only sealed: the aggregate never sees them
in plain text. They are sealed by an adapter under a data key of the integration's own
(adapters/secrets.py), and deleting the integration destroys that key, so the sealed
secrets left in the event store can never be opened again (crypto-shredding).

Integrations of sandbox keys and of live keys are apart, like their jobs: a sandbox key
sees and uses only the integrations made with a sandbox key.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from phantomflow.domain.errors import DomainError

TYPES = ("s3", "ftp", "sftp", "email", "youtube")
REF_PREFIX = "int_"
_REF = re.compile(r"int_([0-9a-f]{32})")


class IntegrationNotFound(DomainError):
    """No such integration for this account and key mode (or it was deleted)."""


def integration_ref(integration_id: UUID) -> str:
    """The public id: `int_` + the aggregate UUID's 32 hex digits."""
    return f"{REF_PREFIX}{integration_id.hex}"


def parse_integration_ref(ref: Any) -> UUID | None:
    if not isinstance(ref, str):
        return None
    found = _REF.fullmatch(ref)
    return UUID(hex=found.group(1)) if found else None


class Integration(Aggregate):
    @event("Created")
    def __init__(
        self,
        id: UUID,
        account_id: UUID,
        sandbox: bool,
        type: str,
        name: str,
        settings: dict[str, Any],
        sealed_secrets: str,
        secret_hints: dict[str, str | None],
    ) -> None:
        if type not in TYPES:
            raise ValueError(f"unknown integration type {type!r}")
        self.account_id = account_id
        self.sandbox = sandbox
        self.type = type
        self.name = name
        self.settings = settings
        # Opaque to the domain: only adapters/secrets.py can open it, while the
        # integration's data key exists.
        self.sealed_secrets = sealed_secrets
        # The last characters of each secret, for people to tell them apart.
        self.secret_hints = secret_hints
        self.deleted = False

    @property
    def ref(self) -> str:
        return integration_ref(self.id)

    def check_usable_by(self, account_id: UUID, sandbox: bool) -> None:
        """Raise IntegrationNotFound unless the caller's key may see this integration."""
        if self.deleted or self.account_id != account_id or self.sandbox != sandbox:
            raise IntegrationNotFound(f"No integration {self.ref}.")

    def delete(self) -> None:
        if self.deleted:
            raise IntegrationNotFound(f"No integration {self.ref}.")
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True
