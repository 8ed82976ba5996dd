"""Integration secrets: sealed under a data key each, and shredded with it."""

from __future__ import annotations

import base64
import os
import stat
import uuid
from pathlib import Path

import pytest

from phantomflow.adapters.secrets import (
    MasterKeyMissing,
    SecretsUnavailable,
    SecretsVault,
    embedded_master_key,
    hint,
    new_master_key,
    parse_master_key,
)
from phantomflow.adapters.viewstore import SQLiteViewStore

SECRET = {"password": "correct horse battery staple"}


@pytest.fixture
def store(tmp_path: Path):
    views = SQLiteViewStore(tmp_path / "keys.sqlite3")
    yield views
    views.close()


def test_a_sealed_secret_opens_only_for_its_integration(store):
    vault = SecretsVault(store, os.urandom(32))
    first, second = uuid.uuid4(), uuid.uuid4()
    sealed = vault.seal(first, SECRET)
    vault.seal(second, {"password": "other"})

    assert "correct horse" not in sealed and "password" not in sealed
    assert vault.open(first, sealed) == SECRET
    with pytest.raises(SecretsUnavailable):
        vault.open(second, sealed)  # copied onto another integration: does not open


def test_destroying_the_data_key_makes_the_secret_unrecoverable(store):
    master = os.urandom(32)
    vault = SecretsVault(store, master)
    integration = uuid.uuid4()
    sealed = vault.seal(integration, SECRET)
    vault.destroy(integration)

    with pytest.raises(SecretsUnavailable, match="destroyed"):
        vault.open(integration, sealed)
    # No wrapped key is left in the key store to open it with.
    with store.read() as cursor:
        cursor.execute("SELECT COUNT(*) FROM integration_keys")
        assert cursor.fetchone()[0] == 0


def test_another_master_key_opens_nothing_and_none_seals_nothing(store):
    integration = uuid.uuid4()
    sealed = SecretsVault(store, os.urandom(32)).seal(integration, SECRET)
    with pytest.raises(SecretsUnavailable, match="another master key"):
        SecretsVault(store, os.urandom(32)).open(integration, sealed)
    keyless = SecretsVault(store, None)
    assert not keyless.available
    with pytest.raises(MasterKeyMissing):
        keyless.seal(uuid.uuid4(), SECRET)


def test_the_embedded_master_key_is_made_once_and_readable_only_by_its_owner(tmp_path: Path):
    first = embedded_master_key(tmp_path / "data")
    assert embedded_master_key(tmp_path / "data") == first
    mode = stat.S_IMODE((tmp_path / "data" / "secrets.key").stat().st_mode)
    assert mode == 0o600


def test_master_keys_are_32_bytes_of_base64():
    assert len(parse_master_key(new_master_key())) == 32
    url_safe = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    assert len(parse_master_key(url_safe)) == 32
    for bad in ("short", base64.b64encode(os.urandom(16)).decode(), "!!!"):
        with pytest.raises(ValueError):
            parse_master_key(bad)


def test_hints_show_the_last_four_characters_of_long_secrets_only():
    assert hint("sk_live_0123456789abcd") == "abcd"
    assert hint("short-pass") is None
