"""Files shipped inside the package, served from memory with an ETag and gzip.

The dashboard's files are package data (no build step, nothing read from the working
directory), so `pip install` ships them and every API process serves the same bytes.
They are read once, at start: a few hundred kilobytes. Only the files found then can
be served, so no request path can reach anything else on disk.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib.abc import Traversable

from aiohttp import web

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# Below this size gzip saves less than its own overhead.
COMPRESS_FROM_BYTES = 512


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    etag: str
    content_type: str


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind(".") :] if "." in name else ""
    content_type = CONTENT_TYPES.get(suffix, "text/plain; charset=utf-8")
    compressible = content_type.startswith(("text/", "image/svg", "application/json"))
    gzipped = (
        gzip.compress(body, compresslevel=9, mtime=0)
        if compressible and len(body) >= COMPRESS_FROM_BYTES
        else None
    )
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, gzipped, etag, content_type)


class StaticBundle:
    """Every file under `root`, by its path relative to `root` ("js/main.js")."""

    def __init__(self, root: Traversable) -> None:
        self.assets: dict[str, Asset] = {}
        self._walk(root, "")

    def _walk(self, folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                if entry.name != "__pycache__":
                    self._walk(entry, f"{name}/")
            else:
                self.assets[name] = _asset(name, entry.read_bytes())

    def response(self, request: web.Request, name: str, cache_control: str) -> web.StreamResponse:
        """The file `name`, 304 when the client holds this version, gzipped when the
        client takes it; 404 for anything that is not in the bundle."""
        asset = self.assets.get(name)
        if asset is None:
            raise web.HTTPNotFound()
        headers = {
            "ETag": asset.etag,
            "Cache-Control": cache_control,
            "Vary": "Accept-Encoding",
        }
        if asset.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = asset.content_type
        return web.Response(body=body, headers=headers)
