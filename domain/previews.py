"""The preview: a free, small look at a script before paying for its render.

A preview is made of a script (or a template and its variables) and costs nothing. A
worker draws its storyboard first (one frame per scene at the scene's middle, and one
at each transition's midpoint: `storyboard_moments`), then its proxy (the whole video,
small, at a low frame rate, watermarked). It lives LIFETIME; then it expires and its
files are deleted. Until then it can become a real render (the job's `origin` names
the preview).

Status is derived from the events, like a job's: `queued` → `processing` →
`completed` (the proxy is ready) or `failed`. Deleting (its owner) and expiring (its
time is up) are not statuses but ends of another kind: a deleted preview is gone for
its owner at once; an expired one still answers, as `expired`, with its files gone.
An expiry is recorded for a deleted preview too: it is when the sweeper made sure its
files are gone.

Public ids look like `prv_` followed by the aggregate UUID's 32 hex digits. The viewer
page is reached by the id and `viewer_token` (256 random bits), so knowing a preview's
id is not enough to watch it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from phantomflow.domain.errors import DomainError
from phantomflow.domain.script import MovieScript

REF_PREFIX = "prv_"
_REF = re.compile(r"prv_([0-9a-f]{32})")
LIFETIME = timedelta(days=7)

QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
EXPIRED = "expired"
STATUSES = (QUEUED, PROCESSING, COMPLETED, FAILED, EXPIRED)

# What a storyboard frame shows: a scene on its own, or a transition half way.
SCENE = "scene"
TRANSITION = "transition"


class PreviewNotFound(DomainError):
    """No such preview for this caller: unknown, deleted, or someone else's."""


class IllegalPreviewTransition(DomainError):
    """The preview cannot change in the way asked (it has ended, or is gone)."""


def preview_ref(preview_id: UUID) -> str:
    return REF_PREFIX + preview_id.hex


def parse_preview_ref(ref: str) -> UUID | None:
    found = _REF.fullmatch(ref)
    return UUID(hex=found.group(1)) if found else None


@dataclass(frozen=True)
class Moment:
    """One storyboard frame: which scene, what of it, and when in the movie."""

    scene: int  # index in the script's scenes; a transition's is the scene it leaves
    kind: str  # SCENE or TRANSITION
    time: float  # seconds into the movie


def storyboard_moments(script: MovieScript) -> list[Moment]:
    """The storyboard's frames, in movie order: each scene at its middle (the scene on
    its own, even when a transition overlaps that moment), and each transition at its
    midpoint."""
    moments: list[Moment] = []
    for number, (scene, start) in enumerate(zip(script.scenes, script.scene_starts(), strict=True)):
        moments.append(Moment(number, SCENE, start + scene.duration / 2))
        if scene.transition is not None:
            midpoint = start + scene.duration - scene.transition.duration / 2
            moments.append(Moment(number, TRANSITION, midpoint))
    return moments


class Preview(Aggregate):
    @event("Created")
    def __init__(
        self,
        account_id: UUID,
        script: dict[str, Any],
        origin: dict[str, Any],
        webhook_uri: str | None,
        sandbox: bool,
        viewer_token: str,
        lifetime_seconds: float,
        metadata: dict[str, Any] | None = None,
        exports: list[dict[str, Any]] | None = None,
    ) -> None:
        self.account_id = account_id
        self.script = script
        self.origin = origin
        # The webhook, metadata and exports of its render (unless it asks for others).
        self.webhook_uri = webhook_uri
        self.metadata = metadata or {}
        self.exports = exports or []
        self.sandbox = sandbox
        self.viewer_token = viewer_token
        self.expires_at = self.created_on + timedelta(seconds=lifetime_seconds)
        self.status = QUEUED
        self.progress = 0.0
        self.stage: str | None = None
        self.attempts = 0
        self.worker: str | None = None
        # [{"scene", "kind", "time", "location"}], in movie order.
        self.storyboard: list[dict[str, Any]] = []
        # {"location", "duration_seconds", "width", "height", "fps", "file_size_bytes"}
        self.proxy: dict[str, Any] | None = None
        self.error: dict[str, str] | None = None
        self.deleted = False
        self.expired = False

    @classmethod
    def create(
        cls,
        account_id: UUID,
        script: dict[str, Any],
        origin: dict[str, Any],
        webhook_uri: str | None,
        sandbox: bool,
        lifetime: timedelta = LIFETIME,
        metadata: dict[str, Any] | None = None,
        exports: list[dict[str, Any]] | None = None,
    ) -> Preview:
        """A new preview, which expires `lifetime` after it is created."""
        return cls(
            account_id=account_id,
            script=script,
            origin=origin,
            webhook_uri=webhook_uri,
            sandbox=sandbox,
            viewer_token=secrets.token_urlsafe(32),
            lifetime_seconds=lifetime.total_seconds(),
            metadata=metadata or {},
            exports=exports or [],
        )

    @property
    def ref(self) -> str:
        return preview_ref(self.id)

    @property
    def gone(self) -> bool:
        """Deleted or expired: nothing about it changes any more but its expiry."""
        return self.deleted or self.expired

    @property
    def is_finished(self) -> bool:
        return self.status in (COMPLETED, FAILED) or self.gone

    def is_live(self, now: datetime) -> bool:
        """Neither deleted nor expired, by the events or by the clock."""
        return not self.gone and now < self.expires_at

    def matches_token(self, token: str) -> bool:
        return secrets.compare_digest(self.viewer_token.encode(), token.encode())

    @property
    def locations(self) -> list[str]:
        """Where its files are kept (storage locations)."""
        found = [frame["location"] for frame in self.storyboard]
        if self.proxy is not None:
            found.append(self.proxy["location"])
        return found

    def _check_drawing(self, doing: str) -> None:
        if self.status != PROCESSING or self.gone:
            state = "gone" if self.gone else self.status
            raise IllegalPreviewTransition(f"cannot {doing} a preview that is {state}")

    # --- drawing --------------------------------------------------------------------

    def start(self, worker: str) -> None:
        if self.status != QUEUED or self.gone:
            raise IllegalPreviewTransition(f"cannot start a preview that is {self.status}")
        self._started(worker=worker, attempt=self.attempts + 1)

    def take_over(self, worker: str, now: datetime, lease_seconds: float) -> None:
        """Start again a preview whose worker stopped reporting."""
        self._check_drawing("take over")
        if (now - self.modified_on).total_seconds() < lease_seconds:
            raise IllegalPreviewTransition("the preview's worker is still active")
        self._started(worker=worker, attempt=self.attempts + 1)

    @event("Started")
    def _started(self, worker: str, attempt: int) -> None:
        self.status = PROCESSING
        self.worker = worker
        self.attempts = attempt
        self.progress = 0.0
        self.stage = "starting"
        # A restarted preview draws everything again (the files are rewritten in place).
        self.storyboard = []

    def report_progress(self, progress: float, stage: str) -> None:
        self._check_drawing("report progress on")
        if not 0 <= progress <= 1:
            raise ValueError(f"progress must be between 0 and 1, got {progress}")
        self._progress_reported(progress=max(progress, self.progress), stage=stage)

    @event("ProgressReported")
    def _progress_reported(self, progress: float, stage: str) -> None:
        self.progress = progress
        self.stage = stage

    def storyboard_drawn(self, frames: list[dict[str, Any]]) -> None:
        self._check_drawing("add a storyboard to")
        if not frames:
            raise ValueError("a storyboard has at least one frame")
        self._storyboard_ready(frames=frames)

    @event("StoryboardReady")
    def _storyboard_ready(self, frames: list[dict[str, Any]]) -> None:
        self.storyboard = frames
        self.stage = "storyboard_ready"

    def proxy_drawn(
        self,
        location: str,
        duration_seconds: float,
        width: int,
        height: int,
        fps: float,
        file_size_bytes: int,
    ) -> None:
        """The proxy is ready: the preview is complete. Its storyboard comes first."""
        self._check_drawing("add a proxy to")
        if not self.storyboard:
            raise IllegalPreviewTransition("a preview's storyboard is ready before its proxy")
        self._proxy_ready(
            location=location,
            duration_seconds=duration_seconds,
            width=width,
            height=height,
            fps=fps,
            file_size_bytes=file_size_bytes,
        )

    @event("ProxyReady")
    def _proxy_ready(
        self,
        location: str,
        duration_seconds: float,
        width: int,
        height: int,
        fps: float,
        file_size_bytes: int,
    ) -> None:
        self.status = COMPLETED
        self.progress = 1.0
        self.stage = "complete"
        self.proxy = {
            "location": location,
            "duration_seconds": duration_seconds,
            "width": width,
            "height": height,
            "fps": fps,
            "file_size_bytes": file_size_bytes,
        }

    def fail(self, code: str, message: str) -> None:
        if self.is_finished:
            raise IllegalPreviewTransition(f"cannot fail a preview that is {self.status}")
        self._failed(code=code, message=message)

    @event("Failed")
    def _failed(self, code: str, message: str) -> None:
        self.status = FAILED
        self.stage = "failed"
        self.error = {"code": code, "message": message}

    # --- ends -----------------------------------------------------------------------

    def delete(self) -> None:
        if self.deleted:
            raise IllegalPreviewTransition("the preview is already deleted")
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True

    def expire(self) -> None:
        """Its time is up and its files are deleted (the sweeper records it)."""
        if self.expired:
            raise IllegalPreviewTransition("the preview has already expired")
        self._expired(files_deleted=self.locations)

    @event("Expired")
    def _expired(self, files_deleted: list[str]) -> None:
        self.expired = True
