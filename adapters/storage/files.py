"""The local-folder backend (`file:///path`): the embedded default.

In production every api and worker process must see the same folder (a shared
volume); with S3 they share nothing. Files are written beside their final name and
renamed into place, so a reader never sees half of one; a render in a scratch folder
on the same filesystem is renamed, not copied.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from phantomflow.adapters.storage import (
    Storage,
    StoredObject,
    check_key,
    content_type_of,
    is_valid_key,
)

CHUNK_BYTES = 1024 * 1024


class FileStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path, *, move: bool = False) -> StoredObject:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.replace(source, final)  # atomic: readers see no file or all of it
                return self._stat(key, final)
            except OSError as error:
                if error.errno != errno.EXDEV:  # EXDEV: another filesystem, so copy
                    raise
        partial = final.with_name(f"{final.name}.part")
        shutil.copyfile(source, partial)
        os.replace(partial, final)  # readers never see a half-written file
        if move:
            source.unlink(missing_ok=True)
        return self._stat(key, final)

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f"{final.name}.part")
        try:
            with open(partial, "wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return self._stat(key, final)

    def stat(self, key: str) -> StoredObject | None:
        if not is_valid_key(key):
            return None
        path = self.root / key
        try:
            return self._stat(key, path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    @staticmethod
    def _stat(key: str, path: Path) -> StoredObject:
        found = path.stat()
        if not path.is_file():
            raise FileNotFoundError(key)
        return StoredObject(
            key=key,
            size=found.st_size,
            # aiohttp's FileResponse computes the same tag, so the two always agree.
            etag=f'"{found.st_mtime_ns:x}-{found.st_size:x}"',
            last_modified=datetime.fromtimestamp(found.st_mtime, UTC),
            content_type=content_type_of(key),
        )

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        handle = open(path, "rb")  # noqa: SIM115 - closed by the generator
        return self._chunks(handle, start, end)

    @staticmethod
    def _chunks(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
        with handle:
            handle.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = handle.read(CHUNK_BYTES if left is None else min(CHUNK_BYTES, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: Path) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        yield path

    def delete(self, key: str) -> None:
        if is_valid_key(key):
            (self.root / key).unlink(missing_ok=True)

    def scratch_dir(self) -> Path | None:
        # A name no key can have (keys never start with "."), on the same filesystem.
        scratch = self.root / ".incoming"
        scratch.mkdir(exist_ok=True)
        return scratch

    def local_path(self, key: str) -> Path | None:
        if not is_valid_key(key):
            return None
        path = self.root / key
        return path if path.is_file() else None
