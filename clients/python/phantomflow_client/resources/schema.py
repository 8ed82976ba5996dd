"""The published documents: the script's JSON Schema and the OpenAPI description."""

from __future__ import annotations

from typing import Any

from phantomflow_client._transport import Call
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    json_body,
    sends,
)


def script() -> Call[dict[str, Any]]:
    """The JSON Schema (draft 2020-12) of a render request's body."""
    return Call("GET", "/api/render/schema", json_body, anonymous=True)


def openapi() -> Call[dict[str, Any]]:
    """The API's OpenAPI 3.1 document."""
    return Call("GET", "/api/openapi.json", json_body, anonymous=True)


class Schema(Resource[Transport]):
    script = sends(script)
    openapi = sends(openapi)
