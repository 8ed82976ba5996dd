"""Integrations: stored credentials of the destinations exports deliver to (S3, FTP,
SFTP, email, YouTube). Settings are kept and shown; secrets are sealed and never shown
again. A render names one by id in its `exports`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from phantomflow_client._transport import Call
from phantomflow_client.models import DeletedIntegration, Integration
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    model,
    models,
    sends,
)

IntegrationType = Literal["s3", "ftp", "sftp", "email", "youtube"]


def create(
    type: IntegrationType,
    name: str,
    settings: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
) -> Call[Integration]:
    """Store an integration; what each type takes is in docs/api.md, "Integrations"."""
    body = {"type": type, "name": name, "settings": dict(settings), "secrets": dict(secrets or {})}
    return Call("POST", "/api/integrations", model(Integration), json=body, has_body=True)


def list_integrations() -> Call[list[Integration]]:
    """The integrations of this key's mode (live or sandbox), newest first."""
    return Call("GET", "/api/integrations", models(Integration, "integrations"))


def get(integration_id: str) -> Call[Integration]:
    return Call("GET", f"/api/integrations/{integration_id}", model(Integration))


def delete(integration_id: str) -> Call[DeletedIntegration]:
    """Delete it: its secret's key is destroyed, so the secret can never be recovered;
    exports still needing it fail with INTEGRATION_UNAVAILABLE."""
    return Call("DELETE", f"/api/integrations/{integration_id}", model(DeletedIntegration))


class Integrations(Resource[Transport]):
    create = sends(create)
    list = sends(list_integrations)
    get = sends(get)
    delete = sends(delete)
