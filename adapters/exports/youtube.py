"""YouTube exports: the YouTube Data API v3 resumable upload, authorised by an OAuth 2.0
refresh token.

Integration settings: `client_id`; secrets: `client_secret`, `refresh_token` (from the
user's consent to the `youtube.upload` scope). Target: `title`, `description`,
`privacy` (`private`, `unlisted`, `public`), `tags`, `category_id`, `made_for_kids`.

The protocol, as Google documents it:

1. `POST https://oauth2.googleapis.com/token` with `grant_type=refresh_token` → an
   access token (`invalid_grant` means the user revoked the consent: permanent).
2. `POST …/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status` with the
   video's metadata as JSON, `X-Upload-Content-Length` and `X-Upload-Content-Type` →
   200 and the upload session's URI in `Location`.
3. `PUT` the bytes to the session URI in chunks (multiples of 256 KiB) with
   `Content-Range: bytes a-b/size`; `308 Resume Incomplete` with `Range: bytes=0-n`
   says what arrived; `200`/`201` with the video resource ends it.
4. After a dropped connection or a 5xx, `PUT` with `Content-Range: bytes */size` asks
   what arrived, and the upload resumes from there (up to `MAX_RESUMES` times in an
   attempt; later attempts start a new session).

Google's servers are unreachable from the test machine, so the tests run this against a
local server that follows the same protocol (tests/servers/youtube.py). Every URL,
the session URI included, is held to the address policy.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from phantomflow.adapters.addresses import AddressRefused, PublicOnlyResolver, check_url
from phantomflow.adapters.exports import (
    ADDRESS_REFUSED,
    AUTH_FAILED,
    CONNECTION_FAILED,
    REMOTE_REJECTED,
    UPLOAD_FAILED,
    ExportError,
    ExportRequest,
)
from phantomflow.domain.exports import ExportOutcome

CHUNK_BYTES = 32 * 256 * 1024  # 8 MiB: a multiple of 256 KiB, as the API requires
READ_BYTES = 256 * 1024
MAX_RESUMES = 5
WATCH_URL = "https://www.youtube.com/watch?v="
_RANGE = re.compile(r"bytes=0-(\d+)")


def deliver(request: ExportRequest) -> ExportOutcome:
    return asyncio.run(_deliver(request))


def _checked(url: str, allow_private: bool) -> str:
    try:
        check_url(url, allow_private=allow_private)
    except AddressRefused as refused:
        raise ExportError(ADDRESS_REFUSED, f"refused: {url}: {refused}", permanent=True) from None
    return url


async def _deliver(request: ExportRequest) -> ExportOutcome:
    options = request.options
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(options.allow_private))
    timeout = aiohttp.ClientTimeout(total=None, connect=options.timeout, sock_read=options.timeout)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            token = await access_token(session, request)
            session_uri = await start_session(session, request, token)
            video = await upload(session, request, token, session_uri)
    except aiohttp.ClientConnectorError as error:
        if isinstance(error.os_error, AddressRefused):
            raise ExportError(ADDRESS_REFUSED, f"refused: {error.os_error}", True) from None
        raise ExportError(CONNECTION_FAILED, str(error)) from None
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ExportError(CONNECTION_FAILED, f"{type(error).__name__}: {error}") from None
    return ExportOutcome(location=WATCH_URL + str(video["id"]), bytes=request.size)


async def access_token(session: aiohttp.ClientSession, request: ExportRequest) -> str:
    url = _checked(request.options.google_token_url, request.options.allow_private)
    form = {
        "grant_type": "refresh_token",
        "client_id": request.settings["client_id"],
        "client_secret": request.secrets["client_secret"],
        "refresh_token": request.secrets["refresh_token"],
    }
    async with session.post(url, data=form, allow_redirects=False) as response:
        body = await _json(response)
        if response.status == 200 and body.get("access_token"):
            return str(body["access_token"])
        error = body.get("error", f"HTTP {response.status}")
        if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
            raise ExportError(
                AUTH_FAILED,
                f"Google refused the refresh token ({error}): reconnect the YouTube account",
                permanent=True,
            )
        raise ExportError(UPLOAD_FAILED, f"token endpoint answered {response.status}: {error}")


def metadata(target: dict[str, Any]) -> dict[str, Any]:
    snippet: dict[str, Any] = {
        "title": target["title"],
        "categoryId": target.get("category_id") or "22",
    }
    if target.get("description"):
        snippet["description"] = target["description"]
    if target.get("tags"):
        snippet["tags"] = list(target["tags"])
    return {
        "snippet": snippet,
        "status": {
            "privacyStatus": target.get("privacy") or "private",
            "selfDeclaredMadeForKids": bool(target.get("made_for_kids", False)),
        },
    }


async def start_session(session: aiohttp.ClientSession, request: ExportRequest, token: str) -> str:
    url = _checked(request.options.youtube_upload_url, request.options.allow_private)
    async with session.post(
        url,
        params={"uploadType": "resumable", "part": "snippet,status"},
        data=json.dumps(metadata(request.target)),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=UTF-8",
            "X-Upload-Content-Length": str(request.size),
            "X-Upload-Content-Type": "video/mp4",
        },
        allow_redirects=False,
    ) as response:
        if response.status == 200 and response.headers.get("Location"):
            return _checked(response.headers["Location"], request.options.allow_private)
        raise _api_error(response.status, await _json(response))


async def upload(
    session: aiohttp.ClientSession, request: ExportRequest, token: str, session_uri: str
) -> dict[str, Any]:
    size = request.size
    offset = 0
    resumes = 0
    auth = {"Authorization": f"Bearer {token}"}
    while True:
        end = min(offset + CHUNK_BYTES, size) - 1
        try:
            async with session.put(
                session_uri,
                data=_read(request.file, offset, end),
                headers={
                    **auth,
                    "Content-Length": str(end - offset + 1),
                    "Content-Range": f"bytes {offset}-{end}/{size}",
                    "Content-Type": "video/mp4",
                },
                allow_redirects=False,
            ) as response:
                if response.status in (200, 201):
                    video: dict[str, Any] = await _json(response)
                    if "id" not in video:
                        raise ExportError(UPLOAD_FAILED, "the upload ended without a video id")
                    return video
                if response.status == 308:
                    offset = _received(response.headers.get("Range"))
                    continue
                if response.status < 500:
                    raise _api_error(response.status, await _json(response))
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError):
            pass  # the connection dropped mid-chunk: ask what arrived, below
        resumes += 1
        if resumes > MAX_RESUMES:
            raise ExportError(UPLOAD_FAILED, f"the upload was interrupted {resumes} times")
        await asyncio.sleep(min(2**resumes, 30) / 10)
        status = await _status(session, session_uri, size, auth)
        if isinstance(status, dict):
            return status  # everything had arrived; only the answer was lost
        offset = status


async def _status(
    session: aiohttp.ClientSession, session_uri: str, size: int, auth: dict[str, str]
) -> int | dict[str, Any]:
    """How many bytes the server has (the resumable protocol's status query), or the
    video resource when the upload had in fact completed."""
    async with session.put(
        session_uri,
        headers={**auth, "Content-Length": "0", "Content-Range": f"bytes */{size}"},
        allow_redirects=False,
    ) as response:
        if response.status in (200, 201):
            video = await _json(response)
            if "id" in video:
                return video
        if response.status == 308:
            return _received(response.headers.get("Range"))
        if response.status == 404:
            raise ExportError(UPLOAD_FAILED, "the upload session expired")
        raise _api_error(response.status, await _json(response))


def _received(range_header: str | None) -> int:
    """The next offset to send, from a 308's `Range: bytes=0-n` (none: nothing yet)."""
    if not range_header:
        return 0
    found = _RANGE.fullmatch(range_header.strip())
    if not found:
        raise ExportError(UPLOAD_FAILED, f"unreadable Range header {range_header!r}")
    return int(found.group(1)) + 1


async def _read(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    """One chunk of the file, read in small pieces as it is sent."""
    with open(path, "rb") as source:
        source.seek(start)
        left = end - start + 1
        while left > 0:
            piece = source.read(min(READ_BYTES, left))
            if not piece:
                return
            left -= len(piece)
            yield piece


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        found = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return {}
    return found if isinstance(found, dict) else {}


def _api_error(status: int, body: dict[str, Any]) -> ExportError:
    error = body.get("error")
    detail = error.get("message") if isinstance(error, dict) else error
    reasons = (
        [item.get("reason") for item in error.get("errors", []) if isinstance(item, dict)]
        if isinstance(error, dict)
        else []
    )
    message = f"YouTube answered {status}: {detail or 'no detail'}"
    if status == 401:
        return ExportError(AUTH_FAILED, message, permanent=True)
    if status == 403 and any(r in ("quotaExceeded", "rateLimitExceeded") for r in reasons):
        return ExportError(UPLOAD_FAILED, message)  # the quota is back tomorrow
    if 400 <= status < 500:
        return ExportError(REMOTE_REJECTED, message, permanent=True)
    return ExportError(UPLOAD_FAILED, message)
