"""The published documents: the script's JSON Schema and the OpenAPI description."""

from __future__ import annotations

from typing import Any

from phantomflow_client._transport import Call
from phantomflow_client.resources._base import AsyncResource, SyncResource, json_body


def script_call() -> Call[dict[str, Any]]:
    return Call("GET", "/api/render/schema", json_body, anonymous=True)


def openapi_call() -> Call[dict[str, Any]]:
    return Call("GET", "/api/openapi.json", json_body, anonymous=True)


class Schema(SyncResource):
    def script(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of a render request's body."""
        return self._transport.send(script_call())

    def openapi(self) -> dict[str, Any]:
        return self._transport.send(openapi_call())


class AsyncSchema(AsyncResource):
    async def script(self) -> dict[str, Any]:
        return await self._transport.send(script_call())

    async def openapi(self) -> dict[str, Any]:
        return await self._transport.send(openapi_call())
