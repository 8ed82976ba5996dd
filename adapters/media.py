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

Any failure raises MediaFetchFailed naming the script path of the source
(`scenes.0.elements.1.src`) and the reason, in words an API user can act on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

from phantomflow.adapters.addresses import AddressRefused, PublicOnlyResolver, check_url
from phantomflow.domain.script import MediaSource

ACCEPTED_TYPES: dict[str, tuple[str, ...]] = {
    "image": ("image/",),
    "video": ("video/",),
    "audio": ("audio/", "video/"),
}
CHUNK_BYTES = 256 * 1024


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


class MediaFetcher:
    def __init__(self, allow_private: bool = False, limits: FetchLimits | None = None) -> None:
        self.allow_private = allow_private
        self.limits = limits or FetchLimits()

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
        limits = self.limits
        try:
            response = await self._get(session, url)
            async with response:
                if response.status != 200:
                    raise MediaFetchFailed(f"{where}: the server answered HTTP {response.status}")
                content_type = response.content_type.lower()
                for use in uses:
                    if not content_type.startswith(ACCEPTED_TYPES[use.kind]):
                        expected = " or ".join(f"{p}*" for p in ACCEPTED_TYPES[use.kind])
                        raise MediaFetchFailed(
                            f"{use.path}: expected {use.kind} ({expected}),"
                            f" the server sent Content-Type {content_type or 'none'}"
                        )
                if response.content_length and response.content_length > limits.max_bytes:
                    raise MediaFetchFailed(_too_large(where, limits.max_bytes))
                size = 0
                with target.open("wb") as file:
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        size += len(chunk)
                        if size > limits.max_bytes:
                            raise MediaFetchFailed(_too_large(where, limits.max_bytes))
                        file.write(chunk)
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
        if size == 0:
            raise MediaFetchFailed(f"{where}: the server sent an empty file")
        return FetchedMedia(url=url, path=target, content_type=content_type, size_bytes=size)

    async def _get(self, session: aiohttp.ClientSession, url: str) -> aiohttp.ClientResponse:
        """GET, following redirects ourselves so that every hop is checked.

        aiohttp does not ask the resolver about a URL whose host is an IP address, so
        those are checked here, before connecting, at every hop."""
        for _hop in range(self.limits.max_redirects + 1):
            self._check_target(url)
            response = await session.get(
                url, allow_redirects=False, headers={"Accept": "image/*, video/*, audio/*"}
            )
            if response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("Location", "")
            response.release()
            if not location:
                return response
            url = str(response.url.join(URL(location)))
        raise AddressRefused(f"more than {self.limits.max_redirects} redirects")

    def _check_target(self, url: str) -> None:
        check_url(url, allow_private=self.allow_private)


def _too_large(where: str, max_bytes: int) -> str:
    return f"{where}: the file is larger than the limit of {max_bytes // (1024 * 1024)} MiB"
