"""Fetching the media a script names (`src` URLs), safely, before FFmpeg sees anything.

FFmpeg never opens a client's URL: we download each source ourselves into the job's
work directory and FFmpeg reads only those local files. A download

- is http or https only (redirects too, at most `max_redirects` of them);
- connects only to public addresses: the host is resolved at connect time by
  `PublicOnlyResolver` (adapters/addresses.py), which refuses loopback, private,
  link-local, multicast and cloud metadata addresses, so a DNS answer cannot be
  swapped between a check and the connection. `allow_private=True` (the setting
  PHANTOMFLOW_ALLOW_PRIVATE_URLS=1) lifts this for tests and self-hosting;
- must answer 200 with a Content-Type of the kind the script uses it as (`image/*`
  for images, `video/*` for videos, `audio/*` or `video/*` for audio);
- may not be larger than `max_bytes` (checked on Content-Length and while reading);
- must finish within `timeout_seconds`, all sources together (fetched concurrently).

With a `MediaCache` (adapters/media_cache.py), a source is downloaded once per host:
a URL the cache holds is revalidated with a conditional GET (`If-None-Match` with its
`ETag`, `If-Modified-Since` with its `Last-Modified`) and a 304 uses the cached bytes;
a URL another job is downloading right now is waited for and used without a request.
The conditional GET goes through every check above, so a cached source is never used
for a URL that would now be refused. Kept: 200 answers with an `ETag` or a
`Last-Modified` (nothing else can be revalidated) and no `Cache-Control: no-store`.
Each result says whether its bytes came from the cache (`from_cache`).

Any failure raises MediaFetchFailed naming the script path of the source
(`scenes.0.elements.1.src`) and the reason, in words an API user can act on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from phantomflow.adapters.addresses import AddressRefused, PublicOnlyResolver, check_url
from phantomflow.adapters.media_cache import EntryInfo, MediaCache, Slot
from phantomflow.domain.script import MediaSource

ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "image": ("image/",),
    "video": ("video/",),
    "audio": ("audio/", "video/"),
}
CHUNK_BYTES = 256 * 1024
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 200 * 1024 * 1024
    timeout_seconds: float = 60.0
    max_redirects: int = 3
    concurrency: int = 4


class MediaFetchFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FetchedMedia:
    url: str
    path: Path
    content_type: str
    size_bytes: int
    from_cache: bool = False  # no bytes downloaded: revalidated, or another job's download


class MediaFetcher:
    def __init__(
        self,
        allow_private: bool = False,
        limits: FetchLimits | None = None,
        cache: MediaCache | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.limits = limits or FetchLimits()
        self.cache = cache

    def fetch_all(
        self,
        sources: Sequence[MediaSource],
        directory: Path,
        on_fetched: Callable[[int, int], None] | None = None,
    ) -> dict[str, FetchedMedia]:
        """Download each distinct URL once into `directory`; return them by URL.

        `on_fetched(done, total)` is called (in this thread) as each one arrives.
        """
        directory.mkdir(parents=True, exist_ok=True)
        wanted: dict[str, list[MediaSource]] = {}
        for source in sources:
            wanted.setdefault(source.url, []).append(source)
        if not wanted:
            return {}
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._fetch_all(wanted, directory, on_fetched))
        # Called from inside an event loop: fetch on a thread of our own.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self._fetch_all(wanted, directory, on_fetched)).result()

    async def _fetch_all(
        self,
        wanted: dict[str, list[MediaSource]],
        directory: Path,
        on_fetched: Callable[[int, int], None] | None,
    ) -> dict[str, FetchedMedia]:
        limits = self.limits
        connector = aiohttp.TCPConnector(
            resolver=PublicOnlyResolver(allow_private=self.allow_private),
            limit=limits.concurrency,
            force_close=True,
        )
        timeout = aiohttp.ClientTimeout(total=limits.timeout_seconds)
        fetched: dict[str, FetchedMedia] = {}
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False, auto_decompress=False
        ) as session:
            tasks = {
                asyncio.ensure_future(
                    self._fetch_one(session, url, uses, directory / f"media_{number:03d}")
                ): url
                for number, (url, uses) in enumerate(wanted.items(), start=1)
            }
            try:
                async with asyncio.timeout(limits.timeout_seconds):
                    for done in asyncio.as_completed(tasks):
                        media = await done
                        fetched[media.url] = media
                        if on_fetched is not None:
                            on_fetched(len(fetched), len(wanted))
            except TimeoutError:
                slow = next(url for task, url in tasks.items() if not task.done())
                raise MediaFetchFailed(
                    f"{wanted[slow][0].path}: the download did not finish within"
                    f" {limits.timeout_seconds:g} s"
                ) from None
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return fetched

    async def _fetch_one(
        self,
        session: aiohttp.ClientSession,
        url: str,
        uses: list[MediaSource],
        target: Path,
    ) -> FetchedMedia:
        where = uses[0].path
        try:
            if self.cache is None:
                return await self._download(session, url, uses, target, None)
            async with self.cache.url_slot(url) as slot:
                return await self._download(session, url, uses, target, slot)
        except MediaFetchFailed:
            raise
        except AddressRefused as refused:
            raise MediaFetchFailed(f"{where}: {refused}") from None
        except aiohttp.ClientConnectorError as error:
            # PublicOnlyResolver's refusal arrives wrapped as a connection error.
            reason = error.os_error if isinstance(error.os_error, AddressRefused) else error
            raise MediaFetchFailed(f"{where}: cannot connect ({reason})") from None
        except (aiohttp.ClientError, OSError) as error:
            raise MediaFetchFailed(f"{where}: download failed ({error})") from None

    async def _download(
        self,
        session: aiohttp.ClientSession,
        url: str,
        uses: list[MediaSource],
        target: Path,
        slot: Slot | None,
    ) -> FetchedMedia:
        """Fetch `url` to `target`: from the cache's `slot` when it holds the URL and
        the server confirms it (or another job has just fetched it), else downloaded
        (and kept in the slot when it can be revalidated later)."""
        where = uses[0].path
        limits = self.limits
        cached = slot.info if slot is not None else None
        if cached is not None and cached.size > limits.max_bytes:
            cached = None  # kept under a larger limit than this fetcher's
        if slot is not None and cached is not None and slot.joined:
            # Fetched by another job while this one waited: no request, but the same
            # refusals (another fetcher sharing the folder may allow more).
            self._check_target(url)
            return self._use_cached(slot, cached, url, uses, target, validated=False)
        response = await self._get(session, url, _conditional_headers(cached))
        if response.status == 304 and cached is not None and str(response.url) != cached.final_url:
            # Redirected elsewhere than the cached copy came from: its validators say
            # nothing about this resource.
            response.release()
            response = await self._get(session, url, {})
        async with response:
            if response.status == 304 and slot is not None and cached is not None:
                return self._use_cached(slot, cached, url, uses, target, validated=True)
            if response.status != 200:
                raise MediaFetchFailed(f"{where}: the server answered HTTP {response.status}")
            content_type = response.content_type.lower()
            _check_kind(uses, content_type)
            if response.content_length and response.content_length > limits.max_bytes:
                raise MediaFetchFailed(_too_large(where, limits.max_bytes))
            keep = slot is not None and _revalidatable(response)
            if slot is not None and not keep:
                slot.drop()  # the server's copy changed into one we cannot keep
            written = slot.temp_path() if keep and slot is not None else target
            size = await _read_body(response, written, where, limits.max_bytes)
            if size == 0:
                raise MediaFetchFailed(f"{where}: the server sent an empty file")
            if keep and slot is not None:
                info = EntryInfo(
                    size=size,
                    content_type=content_type,
                    etag=response.headers.get("ETag"),
                    last_modified=response.headers.get("Last-Modified"),
                    final_url=str(response.url),
                    validated_at=time.time(),
                )
                slot.store(written, info, target)
        return FetchedMedia(url=url, path=target, content_type=content_type, size_bytes=size)

    def _use_cached(
        self,
        slot: Slot,
        cached: EntryInfo,
        url: str,
        uses: list[MediaSource],
        target: Path,
        validated: bool,
    ) -> FetchedMedia:
        _check_kind(uses, cached.content_type)
        slot.touch(validated=validated)
        slot.link_into(target)
        return FetchedMedia(
            url=url,
            path=target,
            content_type=cached.content_type,
            size_bytes=cached.size,
            from_cache=True,
        )

    async def _get(
        self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]
    ) -> aiohttp.ClientResponse:
        """GET (with `headers` too), following redirects ourselves so that every hop is
        checked.

        aiohttp does not ask the resolver about a URL whose host is an IP address, so
        those are checked here, before connecting, at every hop."""
        for _hop in range(self.limits.max_redirects + 1):
            self._check_target(url)
            response = await session.get(
                url,
                allow_redirects=False,
                headers={"Accept": "image/*, video/*, audio/*", **headers},
            )
            if response.status not in REDIRECTS:
                return response
            location = response.headers.get("Location", "")
            response.release()
            if not location:
                return response
            url = str(response.url.join(URL(location)))
        raise AddressRefused(f"more than {self.limits.max_redirects} redirects")

    def _check_target(self, url: str) -> None:
        check_url(url, allow_private=self.allow_private)


def _conditional_headers(cached: EntryInfo | None) -> dict[str, str]:
    """What asks the server to answer 304 if the cached copy is still its copy."""
    headers = {}
    if cached is not None and cached.etag:
        headers["If-None-Match"] = cached.etag
    if cached is not None and cached.last_modified:
        headers["If-Modified-Since"] = cached.last_modified
    return headers


def _revalidatable(response: aiohttp.ClientResponse) -> bool:
    """Whether a 200 answer may be kept: it can be revalidated, and may be stored."""
    cache_control = response.headers.get("Cache-Control", "").lower()
    if "no-store" in cache_control:
        return False
    return bool(response.headers.get("ETag") or response.headers.get("Last-Modified"))


def _check_kind(uses: list[MediaSource], content_type: str) -> None:
    for use in uses:
        if not content_type.startswith(ACCEPTED_TYPES[use.kind]):
            expected = " or ".join(f"{p}*" for p in ACCEPTED_TYPES[use.kind])
            raise MediaFetchFailed(
                f"{use.path}: expected {use.kind} ({expected}),"
                f" the server sent Content-Type {content_type or 'none'}"
            )


async def _read_body(
    response: aiohttp.ClientResponse, path: Path, where: str, max_bytes: int
) -> int:
    """Write the body to `path`, refusing it past `max_bytes`; its size."""
    size = 0
    with path.open("wb") as file:
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > max_bytes:
                raise MediaFetchFailed(_too_large(where, max_bytes))
            file.write(chunk)
    return size


def _too_large(where: str, max_bytes: int) -> str:
    return f"{where}: the file is larger than the limit of {max_bytes // (1024 * 1024)} MiB"
