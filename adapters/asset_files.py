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
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from phantomflow.adapters.media_cache import MediaCache
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


# A spool no byte has reached for this long belongs to an upload that will never finish
# (its API process was killed; a live one discards its own spools): it is removed.
SPOOL_IDLE_SECONDS = 3600.0


def sweep_spools(folder: Path, now: float, idle_seconds: float = SPOOL_IDLE_SECONDS) -> int:
    """Remove the spools in `folder` untouched for `idle_seconds`; how many went."""
    removed = 0
    for path in folder.glob("upload-*") if folder.is_dir() else ():
        try:
            if now - path.stat().st_mtime > idle_seconds:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another API process swept it first
            continue
    return removed


def spool_folder(storage: Storage) -> Path:
    """Where uploads are spooled: beside the stored files for a local folder (so
    storing one is a rename), the system's temporary folder otherwise."""
    return storage.scratch_dir() or Path(tempfile.gettempdir()) / "phantomflow-uploads"


@dataclass(frozen=True)
class LocalAsset:
    """An asset's bytes as a local file for a render, and where they came from:
    `from_cache` is True or False when they had to be downloaded (from the host's media
    cache or from storage), None when the stored file itself is read (a local folder)."""

    path: Path
    from_cache: bool | None


def asset_local_file(
    storage: Storage, key: str, sha256: str, work_dir: Path, cache: MediaCache | None = None
) -> LocalAsset:
    """An asset's bytes as a local file for a render in `work_dir`: the stored file itself
    for a local folder; otherwise a copy from the host's media cache (keyed by the
    content's sha256, so every job and worker process on the host downloads an asset
    once) or, without a cache, a download into `work_dir`.

    The one place a render resolves an asset to bytes."""
    path = storage.local_path(key)
    if path is not None:
        return LocalAsset(path, None)
    target = work_dir / "assets" / f"{sha256}{Path(key).suffix}"
    if target.is_file():  # named twice in one script: here already
        return LocalAsset(target, True)
    target.parent.mkdir(parents=True, exist_ok=True)

    def download(into: Path) -> None:
        with into.open("wb") as out:
            for chunk in storage.read(key):
                out.write(chunk)

    if cache is not None:
        return LocalAsset(target, cache.by_sha256(sha256, download, target))
    partial = target.with_name(f"{target.name}.part")
    download(partial)
    os.replace(partial, target)
    return LocalAsset(target, False)
