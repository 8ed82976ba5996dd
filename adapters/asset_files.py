"""Uploaded assets' files: where they are kept, how an upload is spooled, and how a
render gets a local copy.

An asset's key is `assets/{account}/{sha256}-{asset}.{ext}`: derived from the account,
the content, the asset's own id and the extension its probe gave it (which serves it
with its type), never from anything the client named. The same content uploaded twice
by one account (with keys of one mode) is one asset, stored once. Each asset has a key
of its own so that deleting one never takes the bytes of another: of the account's
asset of the same content in the other key mode, or of an upload of that content under
way while the old asset is deleted.

An upload is spooled to a local file as it arrives (hashed on the way), probed there,
and only then stored (`put_file(move=True)`: a rename for the local folder, an upload
for S3): the probe needs the whole file (an MP4's index may be at its end) and nothing
may be stored before the probe has passed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from uuid import UUID

from phantomflow.adapters.storage import Storage, check_key

PREFIX = "assets"


def asset_key(account_id: UUID, sha256: str, asset_id: UUID, extension: str) -> str:
    return check_key(f"{PREFIX}/{account_id.hex}/{sha256}-{asset_id.hex}.{extension}")


class Spool:
    """One upload on its way to local disk: its bytes written and hashed as they come.

    Not thread-safe; the API writes each spool from one thread at a time."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # A random name without an extension: FFmpeg must tell what it is from its bytes.
        self.path = folder / f"upload-{uuid.uuid4().hex}"
        self._file = self.path.open("xb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.hash(chunk)
        self.store(chunk)

    # The two halves of `write`, for callers that run them in two threads at once (both
    # release the GIL): each must see the chunks in order.
    def hash(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def store(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.size += len(chunk)

    def finish(self) -> str:
        """Close the file; its sha256 (hex)."""
        self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def spool_folder(storage: Storage) -> Path:
    """Where uploads are spooled: beside the stored files for a local folder (so
    storing one is a rename), the system's temporary folder otherwise."""
    return storage.scratch_dir() or Path(tempfile.gettempdir()) / "phantomflow-uploads"


def asset_local_file(storage: Storage, key: str, sha256: str, work_dir: Path) -> Path:
    """A local file with an asset's bytes, for a render in `work_dir`: the stored file
    itself for a local folder, a download into `work_dir` otherwise.

    The one place a render resolves an asset to bytes (a cache keyed by `sha256` can
    stand in front of it)."""
    path = storage.local_path(key)
    if path is not None:
        return path
    target = work_dir / "assets" / f"{sha256}{Path(key).suffix}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.part")
    with partial.open("wb") as out:
        for chunk in storage.read(key):
            out.write(chunk)
    os.replace(partial, target)
    return target
