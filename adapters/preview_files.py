"""Where a preview's files are kept: the one place that stores, finds and deletes them.

A preview's files live under the outputs directory (beside the renders), at keys
`previews/{preview id, 32 hex digits}/{name}`: `storyboard-01.jpg`, …, `proxy.mp4`.
Events record the key, never a path or a URL. They are written beside their final name
and renamed into place (or renamed straight there from the worker's scratch directory
on the same filesystem), so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from uuid import UUID

from phantomflow.adapters.storage import OutputStorage

PREFIX = "previews"
_KEY = re.compile(r"previews/[0-9a-f]{32}/[a-z0-9][a-z0-9.-]{0,63}")


def preview_key(preview_id: UUID, name: str) -> str:
    return f"{PREFIX}/{preview_id.hex}/{name}"


class PreviewFiles(OutputStorage):
    def put(self, preview_id: UUID, name: str, source: Path, *, move: bool = False) -> str:
        """Store `source` as the preview's file `name`; return its key."""
        key = preview_key(preview_id, name)
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        self._put(source, key, move)
        return key

    def path_of(self, location: str) -> Path | None:
        """The file of a key, or None if it is not a preview file's key or not there."""
        if not _KEY.fullmatch(location):
            return None
        path = self.root / location
        return path if path.is_file() else None

    def delete(self, key: str) -> None:
        """Remove one file (a key not there, or not a preview's, is no error), and its
        preview's folder once it is empty."""
        path = self.path_of(key)
        if path is None:
            return
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty yet
            path.parent.rmdir()
