"""A local server that follows Google's documented protocols for uploading a video:
OAuth 2.0's refresh-token grant and the YouTube Data API v3 resumable upload.

The real service is unreachable from here, so the YouTube export is tested against
this, which checks what Google's servers check and answers as they answer
(developers.google.com/youtube/v3/guides/using_resumable_upload_protocol):

- `POST /token` (`grant_type=refresh_token`, `client_id`, `client_secret`,
  `refresh_token`) → `{access_token, expires_in, token_type}`; a revoked or unknown
  refresh token → 400 `invalid_grant`; a wrong client → 401 `invalid_client`.
- `POST /upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` with a
  bearer token, `X-Upload-Content-Length`, `X-Upload-Content-Type` and the metadata as
  JSON → 200 with the session URI in `Location`.
- `PUT {session}` with `Content-Range: bytes a-b/size` → `308` with `Range:
  bytes=0-n` until the last byte, then `200` with the video resource; a chunk that is
  not a multiple of 256 KiB (except the last) → 400; `Content-Range: bytes */size` asks
  what has arrived.

`interrupt_next_chunk_after = n` makes the server drop the connection after n bytes of
the next chunk, keeping those bytes, as a network failure mid-upload would.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

CLIENT_ID = "1234567890-test.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-test-client-secret-0123"
REFRESH_TOKEN = "1//0test-refresh-token-0123456789"
CHUNK_MULTIPLE = 256 * 1024
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass
class Upload:
    metadata: dict[str, Any]
    size: int
    path: Path
    received: int = 0
    video_id: str | None = None


@dataclass
class YouTubeState:
    folder: Path
    base_url: str = ""
    access_tokens: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    uploads: dict[str, Upload] = field(default_factory=dict)
    videos: dict[str, Upload] = field(default_factory=dict)
    token_requests: int = 0
    interrupt_next_chunk_after: int | None = None
    interruptions: int = 0

    def settings(self) -> dict[str, str]:
        return {"client_id": CLIENT_ID}

    def secrets(self, refresh_token: str = REFRESH_TOKEN) -> dict[str, str]:
        return {"client_secret": CLIENT_SECRET, "refresh_token": refresh_token}

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def upload_url(self) -> str:
        return f"{self.base_url}/upload/youtube/v3/videos"


def _error(status: int, reason: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": status, "message": message, "errors": [{"reason": reason}]}},
        status=status,
    )


def build_app(state: YouTubeState) -> web.Application:
    routes = web.RouteTableDef()

    def authorised(request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in state.access_tokens

    @routes.post("/token")
    async def token(request: web.Request) -> web.Response:
        state.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("refresh_token") != REFRESH_TOKEN or REFRESH_TOKEN in state.revoked:
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status=400,
            )
        access = "ya29." + secrets.token_urlsafe(24)
        state.access_tokens.add(access)
        return web.json_response(
            {
                "access_token": access,
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/youtube.upload",
            }
        )

    @routes.post("/upload/youtube/v3/videos")
    async def start(request: web.Request) -> web.Response:
        if not authorised(request):
            return _error(401, "authError", "Invalid Credentials")
        if request.query.get("uploadType") != "resumable":
            return _error(400, "invalidParameter", "uploadType must be resumable")
        parts = set(request.query.get("part", "").split(","))
        if not {"snippet", "status"} <= parts:
            return _error(400, "invalidParameter", "part must name snippet and status")
        try:
            size = int(request.headers["X-Upload-Content-Length"])
        except (KeyError, ValueError):
            return _error(400, "invalidParameter", "X-Upload-Content-Length is required")
        if not request.headers.get("X-Upload-Content-Type", "").startswith("video/"):
            return _error(400, "invalidParameter", "X-Upload-Content-Type must be video/*")
        metadata = await request.json()
        title = metadata.get("snippet", {}).get("title", "")
        if not title or len(title) > 100 or "<" in title or ">" in title:
            return _error(400, "invalidTitle", "The video title is missing or invalid")
        if metadata.get("status", {}).get("privacyStatus") not in ("private", "unlisted", "public"):
            return _error(400, "invalidVideoMetadata", "privacyStatus is invalid")
        upload_id = secrets.token_urlsafe(16)
        state.uploads[upload_id] = Upload(metadata, size, state.folder / f"{upload_id}.bin")
        state.uploads[upload_id].path.write_bytes(b"")
        location = f"{state.upload_url}?uploadType=resumable&upload_id={upload_id}"
        return web.Response(status=200, headers={"Location": location})

    @routes.put("/upload/youtube/v3/videos")
    async def chunk(request: web.Request) -> web.StreamResponse:
        upload = state.uploads.get(request.query.get("upload_id", ""))
        if upload is None:
            return _error(404, "notFound", "The upload session does not exist or expired")
        if not authorised(request):
            return _error(401, "authError", "Invalid Credentials")
        content_range = request.headers.get("Content-Range", "")
        if content_range == f"bytes */{upload.size}":
            return _progress(upload)
        found = _RANGE.fullmatch(content_range)
        if not found or int(found.group(3)) != upload.size:
            return _error(400, "badContentRange", f"bad Content-Range {content_range!r}")
        first, last = int(found.group(1)), int(found.group(2))
        length = last - first + 1
        if first != upload.received:
            return _progress(upload)  # as Google does: says what it has
        if last + 1 < upload.size and length % CHUNK_MULTIPLE:
            return _error(400, "badChunkSize", "chunks must be multiples of 256 KiB")
        cut = state.interrupt_next_chunk_after
        with open(upload.path, "ab") as out:
            kept = 0
            async for piece in request.content.iter_chunked(65536):
                if cut is not None and kept + len(piece) > cut:
                    piece = piece[: cut - kept]
                    out.write(piece)
                    upload.received += len(piece)
                    state.interrupt_next_chunk_after = None
                    state.interruptions += 1
                    assert request.transport is not None
                    request.transport.abort()  # the connection drops mid-chunk
                    raise asyncio.CancelledError
                out.write(piece)
                kept += len(piece)
                upload.received += len(piece)
        if kept != length:
            return _error(400, "badContent", "the body does not match Content-Range")
        return _progress(upload)

    def _progress(upload: Upload) -> web.Response:
        if upload.received >= upload.size:
            if upload.video_id is None:
                upload.video_id = secrets.token_urlsafe(8)
                state.videos[upload.video_id] = upload
            return web.json_response(
                {
                    "kind": "youtube#video",
                    "id": upload.video_id,
                    **upload.metadata,
                    "status": {**upload.metadata["status"], "uploadStatus": "uploaded"},
                }
            )
        headers = {"Range": f"bytes=0-{upload.received - 1}"} if upload.received else {}
        return web.Response(status=308, headers=headers)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(routes)
    return app


@pytest.fixture(scope="session")
def youtube_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[YouTubeState]:
    state = YouTubeState(folder=tmp_path_factory.mktemp("youtube"))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    async def start() -> None:
        runner = web.AppRunner(build_app(state), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        state.base_url = f"http://127.0.0.1:{port}"
        holder["runner"] = runner
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    yield state
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
