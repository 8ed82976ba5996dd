"""API keys of the calling account: list, mint (the secret is shown once), revoke."""

from __future__ import annotations

from typing import Literal

from phantomflow_client._transport import Call
from phantomflow_client.models import ApiKey, NewApiKey, RevokedKey
from phantomflow_client.resources._base import AsyncResource, SyncResource, model, models

Mode = Literal["live", "test"]


def list_call() -> Call[list[ApiKey]]:
    return Call("GET", "/api/keys", models(ApiKey, "keys"))


def create_call(mode: Mode) -> Call[NewApiKey]:
    return Call("POST", "/api/keys", model(NewApiKey), json={"mode": mode}, has_body=True)


def revoke_call(key_id: str) -> Call[RevokedKey]:
    return Call("DELETE", f"/api/keys/{key_id}", model(RevokedKey))


class Keys(SyncResource):
    def list(self) -> list[ApiKey]:
        return self._transport.send(list_call())

    def create(self, mode: Mode = "live") -> NewApiKey:
        return self._transport.send(create_call(mode))

    def revoke(self, key_id: str) -> RevokedKey:
        return self._transport.send(revoke_call(key_id))


class AsyncKeys(AsyncResource):
    async def list(self) -> list[ApiKey]:
        return await self._transport.send(list_call())

    async def create(self, mode: Mode = "live") -> NewApiKey:
        return await self._transport.send(create_call(mode))

    async def revoke(self, key_id: str) -> RevokedKey:
        return await self._transport.send(revoke_call(key_id))
