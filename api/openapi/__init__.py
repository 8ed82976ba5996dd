"""The published schemas, generated from the marshmallow schemas that validate requests.

- `render_json_schema()`: the JSON Schema (draft 2020-12) of the render request body,
  served by `GET /api/render/schema` (converter.py: marshmallow to JSON Schema).
- `openapi_document()`: the OpenAPI 3.1 document of every route, served by
  `GET /api/openapi.json` (document.py), built from the operations (operations.py)
  and the answer schemas (responses.py).
"""

from phantomflow.api.openapi.converter import render_json_schema
from phantomflow.api.openapi.document import openapi_document
from phantomflow.api.openapi.operations import OPERATIONS

__all__ = ["OPERATIONS", "openapi_document", "render_json_schema"]
