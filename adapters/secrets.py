"""Integration secrets: sealed at rest, each under a data key of its own, shreddable.

Envelope encryption with AES-256-GCM (`cryptography`):

- each integration gets a fresh random 256-bit data key; its secrets (a JSON object)
  are sealed with it, and the sealed text is what the event store keeps;
- the data key is kept, wrapped (encrypted) under the deployment's master key, in the
  table `integration_keys` of the database: never in the event store, whose events are
  immutable;
- deleting the integration deletes that row. The sealed secrets stay in the event
  history, but nothing can open them any more: the secret is shredded.

Both encryptions bind the integration's id as associated data, so a sealed secret or a
wrapped key copied onto another integration does not open. The master key is
`PHANTOMFLOW_SECRETS_KEY` (32 random bytes, base64); the embedded default makes one on
first use in `$PHANTOMFLOW_DATA_DIR/secrets.key` (mode 0600). Neither the database
alone nor the master key alone reveals a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from phantomflow.adapters.viewstore import ViewStore

SEALED_PREFIX = "v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
# A secret shorter than this shows no hint: its last four characters would give away
# too much of it.
HINT_MIN_LENGTH = 12

KEYS_TABLE = """
CREATE TABLE IF NOT EXISTS integration_keys (
    integration_id TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL
)
"""


class SecretsUnavailable(Exception):
    """The secrets cannot be opened: the integration's data key was destroyed (the
    integration was deleted), or the master key is not the one they were sealed under."""


class MasterKeyMissing(Exception):
    """No master key is configured (PHANTOMFLOW_SECRETS_KEY), so secrets can be neither
    sealed nor opened."""


def hint(secret: str) -> str | None:
    """What a listing shows of a secret: its last 4 characters, for long ones only."""
    return secret[-4:] if len(secret) >= HINT_MIN_LENGTH else None


def parse_master_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), altchars=b"-_")
    except (binascii.Error, ValueError):
        raise ValueError("PHANTOMFLOW_SECRETS_KEY must be 32 bytes in base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError("PHANTOMFLOW_SECRETS_KEY must be 32 bytes in base64")
    return key


def new_master_key() -> str:
    """A fresh master key, as PHANTOMFLOW_SECRETS_KEY takes it."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def embedded_master_key(data_dir: Path) -> bytes:
    """The embedded default's master key, made on first use beside the event store."""
    path = data_dir / "secrets.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_master_key())
    return parse_master_key(path.read_text())


class SecretsVault:
    def __init__(self, store: ViewStore, master_key: bytes | None) -> None:
        self.store = store
        self._master = AESGCM(master_key) if master_key is not None else None
        self.master_key_id = hashlib.sha256(master_key).hexdigest()[:16] if master_key else ""
        with store.transaction() as cursor:
            cursor.execute(KEYS_TABLE)

    @property
    def available(self) -> bool:
        return self._master is not None

    def _require_master(self) -> AESGCM:
        if self._master is None:
            raise MasterKeyMissing("PHANTOMFLOW_SECRETS_KEY is not set")
        return self._master

    def seal(self, integration_id: UUID, plain: dict[str, str]) -> str:
        """Make the integration's data key, keep it wrapped, and seal `plain` with it."""
        master = self._require_master()
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + master.encrypt(nonce, data_key, _aad("key", integration_id))
        with self.store.transaction() as cursor:
            cursor.execute(
                "INSERT INTO integration_keys (integration_id, master_key_id, wrapped_key)"
                " VALUES (?, ?, ?)",
                (str(integration_id), self.master_key_id, base64.b64encode(wrapped).decode()),
            )
        nonce = os.urandom(NONCE_BYTES)
        body = json.dumps(plain, separators=(",", ":")).encode()
        sealed = nonce + AESGCM(data_key).encrypt(nonce, body, _aad("secrets", integration_id))
        return SEALED_PREFIX + base64.b64encode(sealed).decode()

    def open(self, integration_id: UUID, sealed: str) -> dict[str, str]:
        master = self._require_master()
        with self.store.read() as cursor:
            cursor.execute(
                "SELECT master_key_id, wrapped_key FROM integration_keys WHERE integration_id = ?",
                (str(integration_id),),
            )
            row = cursor.fetchone()
        if row is None:
            raise SecretsUnavailable("the integration's data key has been destroyed")
        if row[0] != self.master_key_id:
            raise SecretsUnavailable("the secrets were sealed under another master key")
        try:
            wrapped = base64.b64decode(row[1])
            data_key = master.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad("key", integration_id)
            )
            raw = base64.b64decode(sealed.removeprefix(SEALED_PREFIX))
            body = AESGCM(data_key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad("secrets", integration_id)
            )
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretsUnavailable("the sealed secrets do not open") from None
        opened: dict[str, str] = json.loads(body)
        return opened

    def destroy(self, integration_id: UUID) -> None:
        """Delete the integration's data key: its sealed secrets never open again."""
        with self.store.transaction() as cursor:
            cursor.execute(
                "DELETE FROM integration_keys WHERE integration_id = ?", (str(integration_id),)
            )


def _aad(purpose: str, integration_id: UUID) -> bytes:
    return f"phantomflow:{purpose}:".encode() + integration_id.bytes
