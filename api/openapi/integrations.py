"""The body of POST /api/integrations as the document publishes it: one variant per
type, each with that type's settings and secrets, told apart by `type`.

The server reads the body in two steps (api/integration_schemas.py: the envelope, then
the settings and secrets of its type), so its marshmallow envelope alone would publish
`settings` and `secrets` as any object; the variants say what each type takes.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from phantomflow.api.integration_schemas import SCHEMAS, NewIntegrationSchema
from phantomflow.api.openapi.converter import COMPONENTS, converter_of, schema_name


def new_integration_components(spec: APISpec) -> dict[str, dict[str, Any]]:
    """`NewIntegration` and its variants (`NewS3Integration`, ...); registers each type's
    settings and secrets schemas with `spec` on the way."""
    envelope = converter_of(spec).schema2jsonschema(NewIntegrationSchema)
    components: dict[str, dict[str, Any]] = {}
    mapping: dict[str, str] = {}
    for kind, (settings, secrets) in SCHEMAS.items():
        for schema in (settings, secrets):
            if schema_name(schema) not in spec.components.schemas:
                spec.components.schema(schema_name(schema), schema=schema)
        variant = f"New{schema_name(settings).removesuffix('Settings')}Integration"
        components[variant] = {
            **envelope,
            "properties": {
                **envelope["properties"],
                "type": {"type": "string", "enum": [kind]},
                "settings": {"$ref": COMPONENTS + schema_name(settings)},
                "secrets": {
                    "$ref": COMPONENTS + schema_name(secrets),
                    "description": "Sealed at once; never shown again.",
                },
            },
        }
        mapping[kind] = COMPONENTS + variant
    components["NewIntegration"] = {
        "description": "An export destination: its type, a name, its settings (kept and"
        " shown) and its secrets (sealed).",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    return components
