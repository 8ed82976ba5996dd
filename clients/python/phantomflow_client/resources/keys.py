"""API keys of the calling account: list, mint (the secret is shown once), revoke."""

from __future__ import annotations

from typing import Literal

from phantomflow_client._transport import Call
from phantomflow_client.models import ApiKey, NewApiKey, RevokedKey
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    model,
    models,
    sends,
)

Mode = Literal["live", "test"]


def list_keys() -> Call[list[ApiKey]]:
    """The account's keys (prefixes only; a sandbox key sees sandbox keys only)."""
    return Call("GET", "/api/keys", models(ApiKey, "keys"))


def create_key(mode: Mode = "live") -> Call[NewApiKey]:
    """Mint a key; its secret (`api_key`) is in this answer only."""
    return Call("POST", "/api/keys", model(NewApiKey), json={"mode": mode}, has_body=True)


def revoke_key(key_id: str) -> Call[RevokedKey]:
    return Call("DELETE", f"/api/keys/{key_id}", model(RevokedKey))


class Keys(Resource[Transport]):
    list = sends(list_keys)
    create = sends(create_key)
    revoke = sends(revoke_key)
