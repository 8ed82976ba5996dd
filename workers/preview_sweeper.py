"""The preview sweeper: deletes the files of previews whose time is up and records each
expiry as an event.

Previews live 7 days (domain/previews.py). The API stops serving a preview's files the
moment it expires, whatever the sweeper has done; the sweeper reclaims the space. Every
`interval` seconds it asks the expiry index (projections/previews.py) which previews are
due, deletes each one's files and then records `Expired` with the keys it deleted (a
crash between the two deletes them again next round: deleting is idempotent). One
process sweeps at a time (the read-model store's leadership lock), so any number of
`phantomflow projections` processes can run it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from phantomflow.adapters.preview_files import PreviewFiles
from phantomflow.adapters.viewstore import ViewStore
from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.previews import IllegalPreviewTransition, PreviewNotFound
from phantomflow.projections.previews import PreviewExpiryQueries

log = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0
BATCH = 100


class PreviewSweeper:
    def __init__(
        self,
        app: PhantomFlow,
        files: PreviewFiles,
        due: PreviewExpiryQueries,
        views: ViewStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval: float = SWEEP_SECONDS,
    ) -> None:
        self.app = app
        self.files = files
        self.due = due
        self.views = views
        self.clock = clock
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def sweep(self) -> int:
        """Expire every preview that is due; return how many were expired."""
        expired = 0
        while True:
            batch = self.due.due(self.clock(), BATCH)
            for preview_id in batch:
                expired += self._expire(preview_id)
            if len(batch) < BATCH:
                return expired

    def _expire(self, preview_id: UUID) -> int:
        try:
            preview = self.app.get_preview(preview_id)
        except PreviewNotFound:
            return 0
        for key in preview.locations:
            self.files.delete(key)
        try:
            self.app.expire_preview(preview.id)
        except IllegalPreviewTransition:  # expired by another sweeper a moment ago
            return 0
        return 1

    # --- running in the background ---------------------------------------------------

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="preview-sweeper", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            with self.views.leadership("preview-sweeper") as leading:
                while leading and not self.stop_event.is_set():
                    try:
                        count = self.sweep()
                        if count:
                            log.info("expired %d previews and deleted their files", count)
                    except Exception:
                        log.exception("the preview sweep failed; trying again later")
                    self.stop_event.wait(self.interval)
            self.stop_event.wait(self.interval)
