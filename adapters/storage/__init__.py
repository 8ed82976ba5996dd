"""Where outputs are kept: one interface, a local folder or an S3-compatible store.

`PHANTOMFLOW_STORAGE_URL` picks the backend (`storage_for`): `file:///path` (the
embedded default, `$PHANTOMFLOW_DATA_DIR/outputs`) or `s3://bucket/prefix`. Renders,
posters and whatever else becomes a file the API serves (uploaded assets, previews) go
through it; nothing else writes outputs.

Objects are named by keys relative to the backend's root (`{job_id}.mp4`,
`assets/…/file`). Events record keys, never paths or URLs, so the backend and the public
address can change without rewriting history. A key is a few `/`-separated parts of
letters, digits, `.`, `_` and `-` (never `.` or `..`), so nothing a client sends can
name a path outside the root.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit
from uuid import UUID

_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}){0,7}")

CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".woff": "font/woff",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
    ".flv": "video/x-flv",
    ".ogv": "video/ogg",
    ".asf": "video/x-ms-asf",
    ".mpg": "video/mpeg",
    ".weba": "audio/webm",
    ".ogg": "audio/ogg",
    ".aac": "audio/aac",
    ".flac": "audio/flac",
    ".w64": "audio/x-w64",
    ".aiff": "audio/aiff",
    ".bmp": "image/bmp",
}


class StorageError(Exception):
    """The backend could not do what was asked (unreachable, refused, out of space)."""


def is_valid_key(key: str) -> bool:
    return bool(_KEY.fullmatch(key)) and ".." not in key


def check_key(key: str) -> str:
    if not is_valid_key(key):
        raise ValueError(f"{key!r} is not a storage key")
    return key


def render_key(job_id: UUID) -> str:
    """The key of a job's MP4."""
    return f"{job_id}.mp4"


def poster_key(job_id: UUID) -> str:
    """The key of a job's JPEG poster frame."""
    return f"{job_id}.jpg"


def content_type_of(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")


@dataclass(frozen=True)
class StoredObject:
    """What a backend knows of one object: enough to answer conditional requests."""

    key: str
    size: int
    # Quoted, as HTTP sends it: '"…"'.
    etag: str
    last_modified: datetime
    content_type: str


class Storage(ABC):
    """A flat namespace of immutable objects: put whole, read (ranges of) them, delete."""

    url: str

    @abstractmethod
    def put_file(self, key: str, source: Path, *, move: bool = False) -> StoredObject:
        """Store a local file under `key`, atomically: readers see no object or all of it.

        With `move`, the source is handed over (renamed where it can be, deleted after
        the upload otherwise); without, it is left as it was."""

    @abstractmethod
    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        """Store what `stream.read(n)` yields until it is exhausted, never holding all of
        it in memory; nothing is stored if reading fails part way."""

    @abstractmethod
    def stat(self, key: str) -> StoredObject | None:
        """The object, or None when there is none (or the key is not a valid key)."""

    @abstractmethod
    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes `start` to `end` (inclusive; None: to the end) in chunks. Raises
        FileNotFoundError when the object is gone."""

    @abstractmethod
    def local_copy(self, key: str, scratch: Path) -> AbstractContextManager[Path]:
        """A local file with the object's bytes for the duration of the block: the file
        itself for the local backend, a download into `scratch` (removed after) for a
        remote one. Raises FileNotFoundError when the object is gone."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is not an error."""

    def local_path(self, key: str) -> Path | None:
        """The object's own file, when the backend is a local folder (served with
        sendfile); None for remote backends."""
        return None

    def scratch_dir(self) -> Path | None:
        """Where to write a file that will be stored with `put_file(move=True)`: a folder
        on the backend's own filesystem (the move is a rename) for a local folder; None
        (the system's temporary folder) for remote backends."""
        return None

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        """A time-limited URL that reads the object straight from the backend, when the
        backend has such URLs; None otherwise."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def storage_for(url: str) -> Storage:
    """The backend a `PHANTOMFLOW_STORAGE_URL` names. S3's endpoint, region and
    credentials come from the standard AWS environment variables (`AWS_ENDPOINT_URL`,
    `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"{url}: a file:// storage URL names a local path (file:///path)")
        from phantomflow.adapters.storage.files import FileStorage

        return FileStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"{url}: an s3:// storage URL names a bucket (s3://bucket/prefix)")
        from phantomflow.adapters.storage.s3 import S3Storage

        return S3Storage(bucket=parts.netloc, prefix=parts.path.strip("/"))
    raise ValueError(f"{url}: storage URLs are file:///path or s3://bucket/prefix")


__all__ = [
    "Storage",
    "StorageError",
    "StoredObject",
    "check_key",
    "content_type_of",
    "is_valid_key",
    "poster_key",
    "render_key",
    "storage_for",
]
