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
    AsyncResource,
    SyncResource,
    idempotency_headers,
    json_body,
    model,
    models,
)
from phantomflow_client.resources.renders import DRY_RUN, submission

Variables = Mapping[str, str | int | float | bool]


def create_call(name: str, script: Mapping[str, Any], is_public: bool) -> Call[TemplateSummary]:
    body = {"name": name, "script": dict(script), "is_public": is_public}
    return Call("POST", "/api/templates", model(TemplateSummary), json=body, has_body=True)


def list_call() -> Call[list[TemplateSummary]]:
    return Call("GET", "/api/templates", models(TemplateSummary, "templates"))


def get_call(template_id: str, version: int | None) -> Call[Template]:
    return Call(
        "GET", f"/api/templates/{template_id}", model(Template), params={"version": version}
    )


def versions_call(template_id: str) -> Call[list[TemplateVersion]]:
    return Call(
        "GET", f"/api/templates/{template_id}/versions", models(TemplateVersion, "versions")
    )


def update_call(
    template_id: str,
    name: str | None,
    script: Mapping[str, Any] | None,
    is_public: bool | None,
) -> Call[TemplateSummary]:
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if script is not None:
        body["script"] = dict(script)
    if is_public is not None:
        body["is_public"] = is_public
    # PATCH sets only the fields given; sending the same change twice records nothing
    # the second time, so a lost answer may be retried.
    return Call(
        "PATCH",
        f"/api/templates/{template_id}",
        model(TemplateSummary),
        json=body,
        has_body=True,
        idempotent=True,
    )


def delete_call(template_id: str) -> Call[Any]:
    return Call("DELETE", f"/api/templates/{template_id}", json_body)


def render_body(
    template_id: str, variables: Variables | None, version: int | None, webhook_uri: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"template_id": template_id, "variables": dict(variables or {})}
    if version is not None:
        body["template_version"] = version
    if webhook_uri is not None:
        body["webhook_uri"] = webhook_uri
    return body


def quote_call(template_id: str, variables: Variables | None, version: int | None) -> Call[Quote]:
    return Call(
        "POST",
        "/api/render/template",
        model(Quote),
        params=DRY_RUN,
        json=render_body(template_id, variables, version, None),
        has_body=True,
        idempotent=True,
    )


def render_call(
    template_id: str,
    variables: Variables | None,
    version: int | None,
    webhook_uri: str | None,
    idempotency_key: str | None,
) -> Call[Submission]:
    body = render_body(template_id, variables, version, webhook_uri)
    return Call(
        "POST",
        "/api/render/template",
        submission,
        json=body,
        has_body=True,
        headers=idempotency_headers(idempotency_key),
    )


class Templates(SyncResource):
    def create(
        self, name: str, script: Mapping[str, Any], *, is_public: bool = False
    ) -> TemplateSummary:
        return self._transport.send(create_call(name, script, is_public))

    def list(self) -> list[TemplateSummary]:
        """The account's own templates, newest first (without their scripts)."""
        return self._transport.send(list_call())

    def get(self, template_id: str, *, version: int | None = None) -> Template:
        """The latest version, or version `version`; yours or a public one."""
        return self._transport.send(get_call(template_id, version))

    def versions(self, template_id: str) -> list[TemplateVersion]:
        return self._transport.send(versions_call(template_id))

    def update(
        self,
        template_id: str,
        *,
        name: str | None = None,
        script: Mapping[str, Any] | None = None,
        is_public: bool | None = None,
    ) -> TemplateSummary:
        return self._transport.send(update_call(template_id, name, script, is_public))

    def delete(self, template_id: str) -> None:
        self._transport.send(delete_call(template_id))

    def render(
        self,
        template_id: str,
        variables: Variables | None = None,
        *,
        version: int | None = None,
        webhook_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submission:
        """Substitute `variables` into the template and queue the render."""
        return self._transport.send(
            render_call(template_id, variables, version, webhook_uri, idempotency_key)
        )

    def quote(
        self, template_id: str, variables: Variables | None = None, *, version: int | None = None
    ) -> Quote:
        """A dry run of `render`: substitute, validate and price, recording nothing."""
        return self._transport.send(quote_call(template_id, variables, version))


class AsyncTemplates(AsyncResource):
    async def create(
        self, name: str, script: Mapping[str, Any], *, is_public: bool = False
    ) -> TemplateSummary:
        return await self._transport.send(create_call(name, script, is_public))

    async def list(self) -> list[TemplateSummary]:
        return await self._transport.send(list_call())

    async def get(self, template_id: str, *, version: int | None = None) -> Template:
        return await self._transport.send(get_call(template_id, version))

    async def versions(self, template_id: str) -> list[TemplateVersion]:
        return await self._transport.send(versions_call(template_id))

    async def update(
        self,
        template_id: str,
        *,
        name: str | None = None,
        script: Mapping[str, Any] | None = None,
        is_public: bool | None = None,
    ) -> TemplateSummary:
        return await self._transport.send(update_call(template_id, name, script, is_public))

    async def delete(self, template_id: str) -> None:
        await self._transport.send(delete_call(template_id))

    async def render(
        self,
        template_id: str,
        variables: Variables | None = None,
        *,
        version: int | None = None,
        webhook_uri: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submission:
        return await self._transport.send(
            render_call(template_id, variables, version, webhook_uri, idempotency_key)
        )

    async def quote(
        self, template_id: str, variables: Variables | None = None, *, version: int | None = None
    ) -> Quote:
        return await self._transport.send(quote_call(template_id, variables, version))
