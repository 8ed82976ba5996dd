"""Route handlers for templates and for rendering one: `/api/templates…`, `/api/render/template`.

Reads of the latest version come from the templates read model (`projections/templates.py`),
with a fall back to the template's own events when the read model has not seen it yet.
Writes return once the read model has reached them (`FollowerRunner.reach`: the lead
copy is given a moment, then the request's thread follows up to its write itself), so
a client that changes a template and reads it back sees its change, however busy the
machine. Pinned versions, version lists
and renders read the event store itself, which is always current.

Errors: see `api/template_schemas.py` for the request bodies and docs/api.md for the
access rules (NOT_FOUND never says whether a template exists; FORBIDDEN only when the
caller can already read the template).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from aiohttp import web
from marshmallow import ValidationError

from phantomflow.api.errors import ApiError, forbidden, invalid_request, not_found
from phantomflow.api.requests import principal_of, read_json
from phantomflow.api.schemas import first_error, load_render_request
from phantomflow.api.services import Services, services_of
from phantomflow.api.submissions import submit
from phantomflow.api.template_schemas import (
    parse_new_template,
    parse_render_request,
    parse_template_changes,
    validation_error,
)
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.substitution import MissingVariables, substitute
from phantomflow.domain.templates import (
    InvalidTemplateName,
    NotTemplateOwner,
    Template,
    TemplateNotFound,
    parse_template_ref,
    template_ref,
)
from phantomflow.projections.templates import document_of, replay
from phantomflow.projections.timestamps import iso

routes = web.RouteTableDef()

T = TypeVar("T")


def template_not_found(message: str) -> ApiError:
    return ApiError.of("TEMPLATE_NOT_FOUND", message)


def _template_id(request: web.Request) -> UUID:
    ref = request.match_info["template_id"]
    template_id = parse_template_ref(ref)
    if template_id is None:
        raise not_found(f"No template {ref}.")
    return template_id


def _write_errors(error: TemplateNotFound | NotTemplateOwner | InvalidTemplateName) -> ApiError:
    """The answer to a refused change of a template."""
    if isinstance(error, TemplateNotFound):
        return not_found(str(error))
    if isinstance(error, NotTemplateOwner):
        return forbidden(str(error))
    return validation_error(str(error), path="name")


async def _on_template(
    request: web.Request, operation: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """`operation(app, template_id, account_id, *args, **kwargs)` off the event loop,
    on the template the route names, as the caller; a refusal answers as
    `_write_errors` says (a template the caller may not read is NOT_FOUND)."""
    principal = principal_of(request)
    template_id = _template_id(request)
    services = services_of(request)
    app = services.runtime.app
    try:
        return await services.call(
            operation, app, template_id, principal.account_id, *args, **kwargs
        )
    except (TemplateNotFound, NotTemplateOwner, InvalidTemplateName) as error:
        raise _write_errors(error) from None


def change_view(template: Template) -> dict[str, Any]:
    return {
        "id": template.ref,
        "name": template.name,
        "is_public": template.is_public,
        "version": template.version,
        "updated_at": document_of(template)["updated_at"],
    }


# --- create, list, read ------------------------------------------------------------


@routes.post("/api/templates")
async def create_template(request: web.Request) -> web.Response:
    principal = principal_of(request)
    fields = parse_new_template(await read_json(request))
    services = services_of(request)
    try:
        change = await services.call(
            services.runtime.app.create_template,
            principal.account_id,
            fields.name,
            fields.script,
            fields.is_public,
        )
    except InvalidTemplateName as error:
        raise _write_errors(error) from None
    await services.read_your_writes(services.runtime.templates_runner, change.position)
    doc = document_of(change.template)
    return web.json_response(
        {key: doc[key] for key in ("id", "name", "is_public", "version", "created_at")},
        status=201,
    )


@routes.get("/api/templates")
async def list_templates(request: web.Request) -> web.Response:
    principal = principal_of(request)
    services = services_of(request)
    found = await services.call(services.runtime.templates.owned_by, str(principal.account_id))
    return web.json_response({"templates": found})


def latest_document(services: Services, reader: UUID, template_id: UUID) -> dict[str, Any]:
    """The latest version as `reader` may see it, from the read model (or the events)."""
    runtime = services.runtime
    ref = template_ref(template_id)
    row = runtime.templates.get(ref) or replay(runtime.app.events.get(template_id))
    if row is None or not (row.doc["is_public"] or row.owner_id == str(reader)):
        raise not_found(f"No template {ref}.")
    return row.doc


@routes.get("/api/templates/{template_id}")
async def get_template(request: web.Request) -> web.Response:
    principal = principal_of(request)
    template_id = _template_id(request)
    services = services_of(request)
    raw_version = request.query.get("version")
    if raw_version is None:
        doc = await services.call(latest_document, services, principal.account_id, template_id)
        return web.json_response(doc)
    if not raw_version.isdigit() or int(raw_version) < 1:
        raise invalid_request("version must be a positive integer", path="version")
    template = await _on_template(request, PhantomFlow.get_template, int(raw_version))
    return web.json_response(document_of(template))


@routes.get("/api/templates/{template_id}/versions")
async def list_versions(request: web.Request) -> web.Response:
    versions = await _on_template(request, PhantomFlow.template_history)
    return web.json_response(
        {
            "id": request.match_info["template_id"],
            "versions": [
                {
                    "version": v.version,
                    "name": v.name,
                    "is_public": v.is_public,
                    "changed": list(v.changed),
                    "created_at": iso(v.recorded_at),
                }
                for v in reversed(versions)
            ],
        }
    )


# --- change, delete ------------------------------------------------------------------


@routes.put("/api/templates/{template_id}")
@routes.patch("/api/templates/{template_id}")
async def update_template(request: web.Request) -> web.Response:
    body = await read_json(request)
    # Access first: someone who may not change the template learns nothing from the
    # validation of a body they cannot apply.
    await _on_template(request, _check_changeable)
    fields = parse_template_changes(body)
    change = await _on_template(
        request,
        PhantomFlow.update_template,
        name=fields.name,
        script=fields.script,
        is_public=fields.is_public,
    )
    services = services_of(request)
    await services.read_your_writes(services.runtime.templates_runner, change.position)
    return web.json_response(change_view(change.template))


def _check_changeable(app: PhantomFlow, template_id: UUID, account_id: UUID) -> None:
    app.get_template(template_id, account_id).check_changeable_by(account_id)


@routes.delete("/api/templates/{template_id}")
async def delete_template(request: web.Request) -> web.Response:
    change = await _on_template(request, PhantomFlow.delete_template)
    services = services_of(request)
    await services.read_your_writes(services.runtime.templates_runner, change.position)
    return web.json_response({"deleted": True})


# --- rendering -----------------------------------------------------------------------


@routes.post("/api/render/template")
async def render_template(request: web.Request) -> web.Response:
    """Substitute the variables into the template's script and submit it exactly as
    `POST /api/render` would: same validation, same price, same response."""
    body = await read_json(request)
    found = await template_script(request, body)
    return await submit(
        request,
        body,
        found.script,
        found.webhook_uri,
        template_origin(found.template),
        found.exports,
        found.metadata,
    )


def template_origin(template: Template) -> dict[str, Any]:
    """Where a script made of a template came from, as a job (or preview) records it."""
    return {
        "channel": "template",
        "template_id": template.ref,
        "template_version": template.version,
    }


class Resolved(NamedTuple):
    """A template render request, resolved: what `POST /api/render` would be given."""

    template: Template
    script: dict[str, Any]  # validated, with the variables substituted
    webhook_uri: str | None
    exports: list[dict[str, Any]]
    metadata: dict[str, Any]


async def template_script(request: web.Request, body: Any) -> Resolved:
    """A template render request's script and the rest, or the error
    `POST /api/render/template` answers."""
    principal = principal_of(request)
    wanted = parse_render_request(body)
    template_id = parse_template_ref(wanted.template_id)
    if template_id is None:
        raise template_not_found(f"No template {wanted.template_id}.")
    services = services_of(request)
    app = services.runtime.app
    try:
        template = await services.call(
            app.get_template, template_id, principal.account_id, wanted.template_version
        )
    except TemplateNotFound as error:
        raise template_not_found(str(error)) from None
    try:
        script = substitute(template.script, wanted.variables)
    except MissingVariables as error:
        raise validation_error(str(error), path="variables", missing=error.names) from None
    if wanted.webhook_uri is not None:
        script["webhook_uri"] = wanted.webhook_uri
    if wanted.exports is not None:
        script["exports"] = wanted.exports
    if wanted.metadata is not None:
        script["metadata"] = wanted.metadata
    try:
        normalised, webhook_uri, exports, metadata = load_render_request(script)
    except ValidationError as error:
        path, message = first_error(error.messages)
        raise ApiError.of(
            "SCHEMA_VALIDATION_ERROR",
            f"{message} (in template {template.ref} version {template.version}"
            " after substituting the variables)",
            path=path,
        ) from None
    return Resolved(template, normalised, webhook_uri, exports, metadata)
