"""Assets: your own media (images, videos, audio, fonts), uploaded once and named in
scripts by id. Uploads stream from disk, report their progress, and are safe to retry:
the same content uploaded again is the same asset, stored and counted once."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

from phantomflow_client._transport import AsyncTransport, Call, SyncTransport
from phantomflow_client.models import Asset, AssetPage, DeletedAsset
from phantomflow_client.resources._base import Resource, Transport, model, models, sends

# A file to upload: a path, or (name, bytes or a binary file object).
Upload = str | os.PathLike[str] | tuple[str, bytes | BinaryIO]
# Called as the upload's bytes are sent: (bytes sent, bytes in all).
OnProgress = Callable[[int, int], Any]
AssetRef = str | Asset
MAX_PAGE_SIZE = 100


def _id(asset: AssetRef) -> str:
    return asset.id if isinstance(asset, Asset) else str(asset)


class _Progress:
    """The bytes sent of every file of one upload, reported as they are read. A retry
    reads a file again from its start, and its count starts again with it."""

    def __init__(self, total: int, report: OnProgress | None) -> None:
        self.total, self.report = total, report
        self.sent: dict[int, int] = {}

    def count(self, file: int, position: int) -> None:
        self.sent[file] = position
        if self.report is not None:
            self.report(sum(self.sent.values()), self.total)


class _Counted:
    """A file object as httpx reads it for a multipart body, counting what is read."""

    def __init__(self, file: BinaryIO, index: int, progress: _Progress) -> None:
        self.file, self.index, self.progress = file, index, progress

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.progress.count(self.index, self.file.tell())
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def fileno(self) -> int:
        return self.file.fileno()  # the upload's length, without reading it


def _opened(stack: ExitStack, files: Iterable[Upload]) -> list[tuple[str, BinaryIO]]:
    """Each upload as (name, binary file object); files opened here close with `stack`."""
    found: list[tuple[str, BinaryIO]] = []
    for item in files:
        if isinstance(item, tuple):
            name, content = item
            found.append((name, io.BytesIO(content) if isinstance(content, bytes) else content))
        else:
            path = Path(item)
            found.append((path.name, stack.enter_context(path.open("rb"))))
    if not found:
        raise ValueError("nothing to upload")
    return found


def _size(file: BinaryIO) -> int:
    position = file.tell()
    end = file.seek(0, os.SEEK_END)
    file.seek(position)
    return end - position


def upload_call(
    files: list[tuple[str, BinaryIO]], on_progress: OnProgress | None
) -> Call[list[Asset]]:
    progress = _Progress(sum(_size(file) for _, file in files), on_progress)
    fields = [
        ("files", (name, _Counted(file, index, progress), "application/octet-stream"))
        for index, (name, file) in enumerate(files)
    ]
    # The same content is the same asset: sending it twice stores and counts it once.
    return Call("POST", "/api/assets", models(Asset, "assets"), files=fields, idempotent=True)


def list_assets(*, page: int = 1, limit: int = 20, type: str | None = None) -> Call[AssetPage]:
    """One page of your assets (of this key's mode), newest first, with your storage use;
    `type`: image, video, audio or font."""
    params = {"page": page, "limit": limit, "type": type}
    return Call("GET", "/api/assets", model(AssetPage), params=params)


def get(asset: AssetRef) -> Call[Asset]:
    return Call("GET", f"/api/assets/{_id(asset)}", model(Asset))


def delete(asset: AssetRef) -> Call[DeletedAsset]:
    """Delete the asset and its file (refused with ASSET_IN_USE while a queued or
    processing job uses it)."""
    return Call("DELETE", f"/api/assets/{_id(asset)}", model(DeletedAsset))


def content_path(asset: AssetRef) -> str:
    return f"/api/assets/{_id(asset)}/content"


class AssetCalls(Resource[Transport]):
    """The calls, for both clients."""

    list = sends(list_assets)
    get = sends(get)
    delete = sends(delete)


class Assets(AssetCalls[SyncTransport]):
    def upload(self, *files: Upload, on_progress: OnProgress | None = None) -> list[Asset]:
        """Upload files (at most 20): paths, or (name, bytes or a binary file). Each is
        streamed from disk; `on_progress(sent, total)` is called as bytes go out.
        Returns one asset per file, in order."""
        with ExitStack() as stack:
            return self._transport.send(upload_call(_opened(stack, files), on_progress))

    def iter(self, *, type: str | None = None, page_size: int = MAX_PAGE_SIZE) -> Iterator[Asset]:
        """Every asset, newest first, fetching pages as it goes."""
        page = 1
        while True:
            found = self.list(page=page, limit=page_size, type=type)
            yield from found.assets
            if not found.assets or page * page_size >= found.total:
                return
            page += 1

    def download(self, asset: AssetRef, path: str | Path) -> Path:
        """Save the asset's file at `path` (read with your key)."""
        return self._transport.download(content_path(asset), Path(path), anonymous=False)


class AsyncAssets(AssetCalls[AsyncTransport]):
    async def upload(self, *files: Upload, on_progress: OnProgress | None = None) -> list[Asset]:
        with ExitStack() as stack:
            return await self._transport.send(upload_call(_opened(stack, files), on_progress))

    async def iter(
        self, *, type: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[Asset]:
        page = 1
        while True:
            found = await self.list(page=page, limit=page_size, type=type)
            for asset in found.assets:
                yield asset
            if not found.assets or page * page_size >= found.total:
                return
            page += 1

    async def download(self, asset: AssetRef, path: str | Path) -> Path:
        return await self._transport.download(content_path(asset), Path(path), anonymous=False)
