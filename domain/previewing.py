"""The use cases of previews: made free of charge, drawn by a worker, deleted by their
owner, expired by the sweeper. Part of the application (`PhantomFlow` in
domain/application.py); a preview becomes a render through the application's own
`submit_render`, with an `origin` that names the preview.

A preview's writes touch the preview alone (never an account: nothing is charged), so
they race only with each other: the worker drawing it, its owner deleting it, the
sweeper expiring it. A version conflict is retried on fresh state; a change the
preview's state no longer allows raises IllegalPreviewTransition.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from phantomflow.domain.assets import AssetUse, asset_uses
from phantomflow.domain.concurrency import ConflictRetries
from phantomflow.domain.previews import LIFETIME, Preview, PreviewNotFound, preview_ref
from phantomflow.domain.script import MovieScript

A = TypeVar("A")


class PreviewUseCases:
    """Mixed into the application, whose save, finder and conflict retries it uses."""

    if TYPE_CHECKING:
        retries: ConflictRetries

        def save(self, *objs: Any, **kwargs: Any) -> Any: ...

        def _find(self, aggregate_id: UUID, kind: type[A]) -> A | None: ...

        def check_asset_uses(
            self, account_id: UUID, sandbox: bool, uses: list[AssetUse]
        ) -> list[UUID]: ...

    def create_preview(
        self,
        account_id: UUID,
        script: MovieScript,
        origin: dict[str, Any],
        webhook_uri: str | None = None,
        sandbox: bool = False,
        lifetime: timedelta = LIFETIME,
        metadata: dict[str, Any] | None = None,
        exports: list[dict[str, Any]] | None = None,
    ) -> Preview:
        """A preview of a validated script, queued; it charges nothing. `webhook_uri`,
        `metadata` and `exports` are its render's, unless the render asks for others.
        The assets it names are checked as a render's (AssetReferenceInvalid)."""
        self.check_asset_uses(account_id, sandbox, asset_uses(script))
        preview = Preview.create(
            account_id,
            script.to_dict(),
            origin,
            webhook_uri,
            sandbox,
            lifetime,
            metadata,
            exports,
        )
        self.save(preview)
        return preview

    def get_preview(self, preview_id: UUID) -> Preview:
        preview = self._find(preview_id, Preview)
        if preview is None:
            raise PreviewNotFound(f"No preview {preview_ref(preview_id)}.")
        return preview

    def start_preview(self, preview: Preview, worker: str, lease_seconds: float) -> None:
        """Record that `worker` draws the preview now. Raises IllegalPreviewTransition
        when it has ended or another worker holds it, RecordConflictError when another
        worker started it at the same moment."""
        if preview.status == "processing":
            preview.take_over(worker, now=datetime.now(UTC), lease_seconds=lease_seconds)
        else:
            preview.start(worker)
        self.save(preview)

    def report_preview_progress(self, preview: Preview, progress: float, stage: str) -> None:
        preview.report_progress(progress, stage)
        self.save(preview)

    def record_storyboard(self, preview_id: UUID, frames: list[dict[str, Any]]) -> Preview:
        return self._change_preview(preview_id, lambda p: p.storyboard_drawn(frames))

    def record_proxy(
        self,
        preview_id: UUID,
        location: str,
        duration_seconds: float,
        width: int,
        height: int,
        fps: float,
        file_size_bytes: int,
    ) -> Preview:
        return self._change_preview(
            preview_id,
            lambda p: p.proxy_drawn(
                location, duration_seconds, width, height, fps, file_size_bytes
            ),
        )

    def fail_preview(self, preview_id: UUID, code: str, message: str) -> Preview:
        return self._change_preview(preview_id, lambda p: p.fail(code, message))

    def delete_preview(self, preview_id: UUID) -> Preview:
        return self._change_preview(preview_id, lambda p: p.delete())

    def expire_preview(self, preview_id: UUID) -> Preview:
        return self._change_preview(preview_id, lambda p: p.expire())

    def _change_preview(self, preview_id: UUID, change: Callable[[Preview], None]) -> Preview:
        def attempt() -> Preview:
            preview = self.get_preview(preview_id)
            change(preview)
            self.save(preview)
            return preview

        return self.retries.run(attempt)
