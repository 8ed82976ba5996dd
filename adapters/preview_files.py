"""Where a preview's files are kept: the one place that stores and deletes them.

They go through the output storage (adapters/storage/: a local folder or S3), beside the
renders, at keys `previews/{preview id, 32 hex digits}/{name}`: `storyboard-01.jpg`, …,
`proxy.mp4`. Events record the key, never a path or a URL; the API serves them under the
preview's viewer link (api/preview_viewer.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

from phantomflow.adapters.storage import Storage

PREFIX = "previews"
_KEY = re.compile(r"previews/[0-9a-f]{32}/[a-z0-9][a-z0-9.-]{0,63}")


def preview_key(preview_id: UUID, name: str) -> str:
    return f"{PREFIX}/{preview_id.hex}/{name}"


def is_preview_key(key: str) -> bool:
    return bool(_KEY.fullmatch(key))


class PreviewFiles:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put(self, preview_id: UUID, name: str, source: Path, *, move: bool = False) -> str:
        """Store `source` as the preview's file `name` (atomically); return its key."""
        key = preview_key(preview_id, name)
        self.storage.put_file(key, source, move=move)
        return key

    def exists(self, key: str) -> bool:
        return is_preview_key(key) and self.storage.stat(key) is not None

    def delete(self, key: str) -> None:
        """Remove one file (a key not there, or not a preview's, is no error)."""
        if is_preview_key(key):
            self.storage.delete(key)
