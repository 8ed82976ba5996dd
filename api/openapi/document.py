"""The OpenAPI 3.1 document, served by `GET /api/openapi.json`: the operations, with
the request and answer schemas as named components."""

from __future__ import annotations

import copy
import functools
from typing import Any

from phantomflow.api.openapi.converter import JSON_SCHEMA_DIALECT, new_spec
from phantomflow.api.openapi.integrations import new_integration_components
from phantomflow.api.openapi.operations import OPERATIONS, REQUEST_SCHEMAS
from phantomflow.api.openapi.responses import RESPONSE_SCHEMAS, plain_components
from phantomflow.api.openapi.template_script import template_script_components


@functools.cache
def _openapi_document() -> dict[str, Any]:
    spec = new_spec()
    spec.components.security_scheme(
        "ApiKey", {"type": "apiKey", "in": "header", "name": "x-api-key"}
    )
    spec.components.security_scheme(
        "ApiKeyQuery",
        {
            "type": "apiKey",
            "in": "query",
            "name": "apiKey",
            "description": "The event streams only (browsers' EventSource sends no headers).",
        },
    )
    # Components that fields name (COMPONENT), before the schemas that use them.
    for name, component in template_script_components().items():
        spec.components.schema(name, component=component)
    for name, component in new_integration_components(spec).items():
        spec.components.schema(name, component=component)
    for name, schema in {**REQUEST_SCHEMAS, **RESPONSE_SCHEMAS}.items():
        spec.components.schema(name, schema=schema)
    for name, component in plain_components().items():
        spec.components.schema(name, component=component)
    for (method, path), operation in OPERATIONS.items():
        spec.path(path=path, operations={method: operation})
    document = spec.to_dict()
    document["security"] = [{"ApiKey": []}]
    document["jsonSchemaDialect"] = JSON_SCHEMA_DIALECT
    return document


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route. A fresh copy each call."""
    return copy.deepcopy(_openapi_document())
