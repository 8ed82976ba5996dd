"""The account the key belongs to: its plan, limits, active jobs and credits."""

from __future__ import annotations

from phantomflow_client._transport import Call
from phantomflow_client.models import Account
from phantomflow_client.resources._base import AsyncResource, SyncResource, model


def get_call() -> Call[Account]:
    return Call("GET", "/api/account", model(Account))


class Accounts(SyncResource):
    def get(self) -> Account:
        return self._transport.send(get_call())


class AsyncAccounts(AsyncResource):
    async def get(self) -> Account:
        return await self._transport.send(get_call())
