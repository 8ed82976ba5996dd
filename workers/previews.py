"""Drawing previews: the `draw_preview` actor on the `previews` queue and the service behind
it. The dispatcher that feeds it, and sends a preview again when its message is lost, is
`PreviewDispatcher` (workers/dispatch.py).

Like a render (workers/render.py), drawing a preview is safe to run twice: a finished
preview is left alone, only one worker can record `Started`, and a preview whose worker
went quiet for longer than the lease is taken over. What differs:

- Previews have a queue of their own, ahead of renders: the actor's priority is above a
  render's, so a worker thread that frees up takes a waiting preview first, and
  `phantomflow serve` (and `phantomflow worker --queues previews`) gives previews
  threads of their own, so a farm busy rendering still previews at once.
- The storyboard is stored and recorded as soon as it is drawn, before the proxy is
  begun: a client sees it while the proxy is still being drawn.
- A sandbox key's preview is drawn like any other: previews cost nothing anyway.
- A preview deleted (or expired) while it is drawn is abandoned, and the files this
  worker stored for it are deleted.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import dramatiq
from eventsourcing.persistence import RecordConflictError

from phantomflow.adapters.preview_files import PreviewFiles
from phantomflow.adapters.render import FFmpegRenderer, RenderFailed
from phantomflow.adapters.render.preview import Still
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.previews import IllegalPreviewTransition, Preview, PreviewNotFound
from phantomflow.domain.script import MovieScript

log = logging.getLogger(__name__)

PREVIEW_QUEUE = "previews"
PREVIEW_ACTOR = "draw_preview"
# Dramatiq takes the lowest number first among the messages a worker holds; a render's
# is 0.
PREVIEW_PRIORITY = -10
PREVIEW_TIME_LIMIT_MS = 15 * 60 * 1000


class PreviewBusy(Exception):
    """Another worker holds the preview's lease; try again later (it may have died)."""


class PreviewAbandoned(Exception):
    """The preview was deleted, expired or taken over while this worker drew it."""


@dataclass
class PreviewService:
    app: PhantomFlow
    renderer: FFmpegRenderer
    files: PreviewFiles
    lease_seconds: float = 300.0
    worker_name: str = ""

    def __post_init__(self) -> None:
        if not self.worker_name:
            self.worker_name = f"worker-{uuid.uuid4().hex[:8]}"

    def run(self, preview_id: UUID) -> str:
        """Draw the preview if it is ours to draw; return what happened, for logs."""
        try:
            preview = self.app.get_preview(preview_id)
        except PreviewNotFound:
            log.error("preview message for unknown preview %s dropped", preview_id)
            return "unknown preview"
        if preview.is_finished:
            return "already finished"
        try:
            self.app.start_preview(preview, self.worker_name, self.lease_seconds)
        except IllegalPreviewTransition as busy:
            raise PreviewBusy(str(busy)) from None
        except RecordConflictError:
            return "taken by another worker"
        return self._draw(preview)

    def _draw(self, preview: Preview) -> str:
        stored: list[str] = []

        def keep(source: Path) -> str:
            key = self.files.put(preview.id, source.name, source, move=True)
            stored.append(key)
            return key

        def on_storyboard(stills: list[Still]) -> None:
            frames = [
                {
                    "scene": still.moment.scene,
                    "kind": still.moment.kind,
                    "time": round(still.moment.time, 3),
                    "location": keep(still.path),
                }
                for still in stills
            ]
            try:
                self.app.record_storyboard(preview.id, frames)
            except IllegalPreviewTransition:
                raise PreviewAbandoned(str(preview.id)) from None

        progress = PreviewProgress(self.app, preview, self.worker_name)
        with tempfile.TemporaryDirectory(prefix=f"preview-{preview.id}-") as scratch:
            try:
                result = self.renderer.preview(
                    MovieScript.from_dict(preview.script),
                    Path(scratch) / "out",
                    progress,
                    on_storyboard,
                    Path(scratch) / "work",
                )
            except RenderFailed as failure:
                return self._record_failure(preview.id, failure.message, stored)
            except PreviewAbandoned:
                return self._discard(stored)
            except Exception:
                reference = uuid.uuid4().hex[:12]
                log.exception("preview %s crashed (reference %s)", preview.id, reference)
                message = f"internal error while drawing the preview (reference {reference})"
                return self._record_failure(preview.id, message, stored)
            proxy = keep(result.path)
        try:
            self.app.record_proxy(
                preview.id,
                proxy,
                result.duration_seconds,
                result.width,
                result.height,
                result.fps,
                result.file_size_bytes,
            )
        except IllegalPreviewTransition:
            return self._discard(stored)
        return "completed"

    def _record_failure(self, preview_id: UUID, message: str, stored: list[str]) -> str:
        """Failed: a storyboard already recorded stays (it was drawn, and is shown)."""
        try:
            self.app.fail_preview(preview_id, "RENDER_FAILED", message)
        except IllegalPreviewTransition:
            return self._discard(stored)
        return "failed"

    def _discard(self, stored: list[str]) -> str:
        for key in stored:
            self.files.delete(key)
        return "abandoned"


class PreviewProgress:
    """The renderer's progress callback: each report becomes a ProgressReported event."""

    def __init__(self, app: PhantomFlow, preview: Preview, worker_name: str) -> None:
        self.app = app
        self.preview = preview
        self.worker_name = worker_name

    def __call__(
        self, progress: float, stage: str, *, media_cache: dict[str, int] | None = None
    ) -> None:
        # A preview's events keep their shape: `media_cache` is reported on jobs only.
        try:
            self.app.report_preview_progress(self.preview, progress, stage)
        except (RecordConflictError, IllegalPreviewTransition):
            # Written by someone else (the storyboard, a deletion): go on if still ours.
            self.preview = self.app.get_preview(self.preview.id)
            preview = self.preview
            if preview.gone or preview.status != "processing" or preview.worker != self.worker_name:
                raise PreviewAbandoned(str(self.preview.id)) from None
            self.app.report_preview_progress(self.preview, progress, stage)


def _should_retry(retries: int, error: BaseException) -> bool:
    if isinstance(error, PreviewBusy):
        return retries < 30
    return retries < 5


def declare_preview_actor(
    broker: dramatiq.Broker, service: Callable[[], PreviewService]
) -> dramatiq.Actor[[str], None]:
    def draw_preview(preview_id: str) -> None:
        outcome = service().run(UUID(preview_id))
        log.info("preview %s: %s", preview_id, outcome)

    actor: dramatiq.Actor[[str], None] = dramatiq.actor(
        draw_preview,
        broker=broker,
        actor_name=PREVIEW_ACTOR,
        queue_name=PREVIEW_QUEUE,
        priority=PREVIEW_PRIORITY,
        time_limit=PREVIEW_TIME_LIMIT_MS,
        retry_when=_should_retry,
        min_backoff=500,
        max_backoff=10_000,
    )
    return actor
