"""Templates: scripts with `{{variable}}` placeholders, versioned, and rendered with values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phantomflow_client._transport import Call
from phantomflow_client.models import (
    Quote,
    Submission,
    Template,
    TemplateSummary,
    TemplateVersion,
)
from phantomflow_client.resources._base import (
    Resource,
    Transport,
    model,
    models,
    sends,
    with_extras,
)
from phantomflow_client.resources.renders import Exports, Metadata, dry_run, submit

Variables = Mapping[str, str | int | float | bool]


def create(
    name: str, script: Mapping[str, Any], *, is_public: bool = False
) -> Call[TemplateSummary]:
    body = {"name": name, "script": dict(script), "is_public": is_public}
    return Call("POST", "/api/templates", model(TemplateSummary), json=body, has_body=True)


def list_templates() -> Call[list[TemplateSummary]]:
    """The account's own templates, newest first (without their scripts)."""
    return Call("GET", "/api/templates", models(TemplateSummary, "templates"))


def get(template_id: str, *, version: int | None = None) -> Call[Template]:
    """The latest version, or version `version`; yours or a public one."""
    return Call(
        "GET", f"/api/templates/{template_id}", model(Template), params={"version": version}
    )


def versions(template_id: str) -> Call[list[TemplateVersion]]:
    """The template's versions, newest first."""
    return Call(
        "GET", f"/api/templates/{template_id}/versions", models(TemplateVersion, "versions")
    )


def _changes(
    method: str,
    template_id: str,
    name: str | None,
    script: Mapping[str, Any] | None,
    is_public: bool | None,
) -> Call[TemplateSummary]:
    body = with_extras({}, name=name, script=None if script is None else dict(script))
    if is_public is not None:
        body["is_public"] = is_public
    # Only the fields given change; the same change twice records nothing the second
    # time, so a lost answer may be retried (PATCH too).
    return Call(
        method,
        f"/api/templates/{template_id}",
        model(TemplateSummary),
        json=body,
        has_body=True,
        idempotent=True,
    )


def update(
    template_id: str,
    *,
    name: str | None = None,
    script: Mapping[str, Any] | None = None,
    is_public: bool | None = None,
) -> Call[TemplateSummary]:
    """Change the fields given (PATCH): a new version, unless nothing changes."""
    return _changes("PATCH", template_id, name, script, is_public)


def replace(
    template_id: str,
    *,
    name: str | None = None,
    script: Mapping[str, Any] | None = None,
    is_public: bool | None = None,
) -> Call[TemplateSummary]:
    """The same change sent as PUT (the server treats PUT and PATCH alike)."""
    return _changes("PUT", template_id, name, script, is_public)


def delete(template_id: str) -> Call[Any]:
    """Delete the template, all its versions with it."""
    return Call("DELETE", f"/api/templates/{template_id}", lambda _: None)


def render_body(
    template_id: str,
    variables: Variables | None,
    version: int | None,
    **extras: Any,
) -> dict[str, Any]:
    body = {"template_id": template_id, "variables": dict(variables or {})}
    return with_extras(body, template_version=version, **extras)


def render(
    template_id: str,
    variables: Variables | None = None,
    *,
    version: int | None = None,
    webhook_uri: str | None = None,
    metadata: Metadata | None = None,
    exports: Exports | None = None,
    idempotency_key: str | None = None,
) -> Call[Submission]:
    """Substitute `variables` into the template and queue the render (charged as
    `renders.create`; `metadata` replaces the script's)."""
    body = render_body(
        template_id, variables, version, webhook_uri=webhook_uri, metadata=metadata, exports=exports
    )
    return submit("/api/render/template", body, idempotency_key)


def quote(
    template_id: str,
    variables: Variables | None = None,
    *,
    version: int | None = None,
    metadata: Metadata | None = None,
    exports: Exports | None = None,
) -> Call[Quote]:
    """A dry run of `render`: substitute, validate and price, recording nothing."""
    body = render_body(template_id, variables, version, metadata=metadata, exports=exports)
    return dry_run("/api/render/template", body)


class Templates(Resource[Transport]):
    create = sends(create)
    list = sends(list_templates)
    get = sends(get)
    versions = sends(versions)
    update = sends(update)
    replace = sends(replace)
    delete = sends(delete)
    render = sends(render)
    quote = sends(quote)
