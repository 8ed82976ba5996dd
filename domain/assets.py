"""Assets: files an account uploaded to use in its scripts (`"src": "asset_…"`, and a
text element's `"font_family": "asset_…"`).

An asset is recorded only once its file is stored and probed, so its first save holds
both `Uploaded` and `Probed`; `Deleted` ends it. The bytes it occupies, which content
the account already holds (one asset per content and key mode, by sha256) and which jobs
hold which assets are the account's (domain/accounts.py), so a quota, a duplicate and
a deletion racing a submission are all decided on one aggregate's version.

Assets of sandbox keys and of live keys are apart, like their jobs and integrations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from phantomflow.domain.errors import DomainError
from phantomflow.domain.script import MovieScript, TextElement

TYPES = ("image", "video", "audio", "font")
REF_PREFIX = "asset_"
REF_PATTERN = r"asset_[0-9a-f]{32}"
_REF = re.compile(REF_PATTERN)
# The longest display name kept (characters, after sanitising).
MAX_NAME_LENGTH = 255


class AssetNotFound(DomainError):
    """No such asset for this account and key mode (or it was deleted)."""


class AssetInUse(DomainError):
    def __init__(self, ref: str, job_ids: list[str]) -> None:
        super().__init__(
            f"Asset {ref} is used by {len(job_ids)} queued or processing job(s); "
            "delete it once they have ended."
        )
        self.ref = ref
        self.job_ids = job_ids


class StorageLimitExceeded(DomainError):
    def __init__(self, used_bytes: int, limit_bytes: int, required_bytes: int) -> None:
        super().__init__(
            f"These files need {required_bytes} bytes; {used_bytes} of the plan's "
            f"{limit_bytes} bytes are used."
        )
        self.used_bytes = used_bytes
        self.limit_bytes = limit_bytes
        self.required_bytes = required_bytes


class AssetReferenceInvalid(DomainError):
    """A script names an asset it may not use there (`path`, dotted)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def asset_ref(asset_id: UUID) -> str:
    """The public id: `asset_` + the aggregate UUID's 32 hex digits."""
    return f"{REF_PREFIX}{asset_id.hex}"


def parse_asset_ref(ref: Any) -> UUID | None:
    if not isinstance(ref, str):
        return None
    found = _REF.fullmatch(ref)
    return UUID(hex=ref[len(REF_PREFIX) :]) if found else None


def is_asset_ref(value: Any) -> bool:
    return parse_asset_ref(value) is not None


_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\]+")


def display_name(raw: str | None) -> str:
    """A client's file name as a display name only: no directory part, no control
    characters or path separators, at most MAX_NAME_LENGTH characters ("file" if
    nothing is left). It never names a path or a storage key."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip().strip(".")
    return name[:MAX_NAME_LENGTH] or "file"


class Asset(Aggregate):
    @event("Uploaded")
    def __init__(
        self,
        id: UUID,
        account_id: UUID,
        sandbox: bool,
        name: str,
        sha256: str,
        size: int,
        key: str,
    ) -> None:
        self.account_id = account_id
        self.sandbox = sandbox
        self.name = name
        self.sha256 = sha256
        self.size = size
        # The storage key of its bytes: its own (adapters/asset_files.py), so deleting it
        # never takes bytes another asset, or an upload under way, relies on.
        self.key = key
        self.type: str | None = None
        self.mime_type: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.duration_seconds: float | None = None
        self.deleted = False

    @property
    def ref(self) -> str:
        return asset_ref(self.id)

    @event("Probed")
    def record_probe(
        self,
        type: str,
        mime_type: str,
        width: int | None,
        height: int | None,
        duration_seconds: float | None,
    ) -> None:
        if type not in TYPES:
            raise DomainError(f"unknown asset type {type!r}")
        self.type = type
        self.mime_type = mime_type
        self.width = width
        self.height = height
        self.duration_seconds = duration_seconds

    def check_usable_by(self, account_id: UUID, sandbox: bool) -> None:
        """Raise AssetNotFound unless the caller's key may see this asset."""
        if self.deleted or self.account_id != account_id or self.sandbox != sandbox:
            raise AssetNotFound(f"No asset {self.ref}.")

    def delete(self) -> None:
        if self.deleted:
            raise AssetNotFound(f"No asset {self.ref}.")
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True


def content_slot(sandbox: bool, sha256: str) -> str:
    """Where the account indexes the asset of one content in one key mode."""
    return f"{'test' if sandbox else 'live'}:{sha256}"


@dataclass(frozen=True)
class AssetUse:
    """One place a script names an asset, and the type of asset that place takes."""

    ref: str
    type: str  # one of TYPES
    path: str  # dotted, as in validation errors


def asset_uses(script: MovieScript) -> list[AssetUse]:
    """Every asset the script names, in document order (an asset may repeat): media
    sources (`src`) and text elements' fonts (`font_family`)."""
    found = [
        AssetUse(source.url, source.kind, source.path)
        for source in script.media_sources()
        if is_asset_ref(source.url)
    ]
    for number, scene in enumerate(script.scenes):
        for index, element in enumerate(scene.elements):
            if isinstance(element, TextElement) and is_asset_ref(element.font_family):
                found.append(
                    AssetUse(
                        element.font_family,
                        "font",
                        f"scenes.{number}.elements.{index}.font_family",
                    )
                )
    return found
