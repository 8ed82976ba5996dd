"""The template: a named movie script with `{{variable}}` placeholders, owned by an account.

Every change is an event (Created, Updated, Deleted) and so a new version: the
aggregate's version is its template version, and its event history is the version
history (version n is the state after the n-th event). Deleting is permanent and is the
last event a template can have.

Who may do what, decided on the template's *current* state:

- read it (and render it): its owner, and anyone while it is public;
- change or delete it: its owner only.

A template that is deleted, or private and someone else's, is indistinguishable from one
that never existed (`TemplateNotFound`): its existence is never leaked. Someone else's
public template can be read but not changed (`NotTemplateOwner`).

Public ids look like `tpl_` followed by the aggregate UUID's 32 hex digits; `template_ref`
and `parse_template_ref` are the one place the two forms are mapped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from phantomflow.domain.errors import DomainError

REF_PREFIX = "tpl_"
_REF = re.compile(r"tpl_([0-9a-f]{32})")
MAX_NAME_LENGTH = 200
FIELDS = ("name", "script", "is_public")


class TemplateNotFound(DomainError):
    """No such template for this caller: unknown, deleted, or someone else's and private."""


class NotTemplateOwner(DomainError):
    """The caller can see the template (it is public) but only its owner may change it."""


class TemplateDeleted(DomainError):
    """A deleted template cannot change."""


class InvalidTemplateName(DomainError):
    pass


def template_ref(template_id: UUID) -> str:
    """The public id of a template: `tpl_` + the aggregate UUID's hex."""
    return REF_PREFIX + template_id.hex


def parse_template_ref(ref: str) -> UUID | None:
    """The aggregate UUID a public id names, or None if it is not a template id."""
    found = _REF.fullmatch(ref)
    return UUID(hex=found.group(1)) if found else None


def clean_name(name: str) -> str:
    """A template name without surrounding spaces; refused when empty or too long."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidTemplateName("Template name must not be empty.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidTemplateName(f"Template name must be at most {MAX_NAME_LENGTH} characters.")
    return cleaned


class Template(Aggregate):
    @event("Created")
    def __init__(self, owner_id: UUID, name: str, script: dict[str, Any], is_public: bool) -> None:
        self.owner_id = owner_id
        self.name = name
        self.script = script
        self.is_public = is_public
        self.deleted = False

    @classmethod
    def create(cls, owner_id: UUID, name: str, script: dict[str, Any], is_public: bool) -> Template:
        return cls(owner_id=owner_id, name=clean_name(name), script=script, is_public=is_public)

    @property
    def ref(self) -> str:
        return template_ref(self.id)

    # --- access -------------------------------------------------------------------

    def readable_by(self, account_id: UUID) -> bool:
        return not self.deleted and (self.is_public or self.owner_id == account_id)

    def check_readable_by(self, account_id: UUID) -> None:
        if not self.readable_by(account_id):
            raise TemplateNotFound(f"No template {self.ref}.")

    def check_changeable_by(self, account_id: UUID) -> None:
        self.check_readable_by(account_id)
        if self.owner_id != account_id:
            raise NotTemplateOwner(f"Only the owner of template {self.ref} can change it.")

    # --- changes ------------------------------------------------------------------

    def update(
        self,
        name: str | None = None,
        script: dict[str, Any] | None = None,
        is_public: bool | None = None,
    ) -> bool:
        """Change the fields given; return whether anything changed.

        Fields given with their current value are not changes: when nothing differs,
        no event is recorded and the version stays the same."""
        if self.deleted:
            raise TemplateDeleted(f"Template {self.ref} is deleted.")
        changes: dict[str, Any] = {}
        if name is not None and clean_name(name) != self.name:
            changes["name"] = clean_name(name)
        if script is not None and script != self.script:
            changes["script"] = script
        if is_public is not None and is_public != self.is_public:
            changes["is_public"] = is_public
        if not changes:
            return False
        self._updated(**changes)
        return True

    @event("Updated")
    def _updated(
        self,
        name: str | None = None,
        script: dict[str, Any] | None = None,
        is_public: bool | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        if script is not None:
            self.script = script
        if is_public is not None:
            self.is_public = is_public

    def delete(self) -> None:
        if self.deleted:
            raise TemplateDeleted(f"Template {self.ref} is deleted.")
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True


@dataclass(frozen=True)
class TemplateVersion:
    """One entry of a template's history: its state after one event."""

    version: int
    name: str
    is_public: bool
    changed: tuple[str, ...]
    recorded_at: datetime


def history(events: list[Any]) -> list[TemplateVersion]:
    """The versions a template's events made, oldest first (deletion is not a version)."""
    versions: list[TemplateVersion] = []
    name, is_public = "", False
    for item in events:
        if isinstance(item, Template.Created):
            name, is_public = item.name, item.is_public
            changed: tuple[str, ...] = FIELDS
        elif isinstance(item, Template.Updated):
            changed = tuple(field for field in FIELDS if getattr(item, field, None) is not None)
            name = item.name if item.name is not None else name
            is_public = item.is_public if item.is_public is not None else is_public
        else:
            continue
        versions.append(
            TemplateVersion(
                version=item.originator_version,
                name=name,
                is_public=is_public,
                changed=changed,
                recorded_at=item.timestamp,
            )
        )
    return versions


@dataclass(frozen=True)
class TemplateChange:
    """A template after a change, and where its last event landed in the application's
    sequence (None when nothing changed), so a reader can wait for its read model."""

    template: Template
    position: int | None
