"""The account the key belongs to: its plan, limits, active jobs and credits."""

from __future__ import annotations

from phantomflow_client._transport import Call
from phantomflow_client.models import Account
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    model,
    sends,
)


def get_account() -> Call[Account]:
    return Call("GET", "/api/account", model(Account))


class Accounts(Resource[Transport]):
    get = sends(get_account)
