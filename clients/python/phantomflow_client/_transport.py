"""HTTP with retries: one description of a call (`Call`), sent by a sync or an async transport.

What is retried, and why it is safe:

- 429 (rate or concurrency limit): always. The server refused the request before doing
  anything. The wait is `Retry-After` when the answer has one, else the backoff.
- 500, 502, 503, 504, and a connection lost after the request was sent: only when
  sending the request twice does no harm, i.e. the method is idempotent (GET, PUT,
  DELETE, ...) or the request carries an `Idempotency-Key` (submissions always do, one
  generated per call and reused by its retries, so the server charges once).
- A connection that could not be opened: always (nothing reached the server).

Backoff: `backoff × 2^attempt`, capped at `max_backoff`, with "equal jitter" (half of it
fixed, half random) so that clients refused together do not come back together.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from phantomflow_client._version import __version__
from phantomflow_client.errors import (
    APIConnectionError,
    error_from_response,
    retry_after_seconds,
)

log = logging.getLogger("phantomflow_client")

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Event streams: the server sends a keep-alive comment every 15 s, so a minute of silence
# means the connection is dead, and the follower reconnects.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)
CHUNK_BYTES = 1 << 16
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRIED_STATUSES = frozenset({500, 502, 503, 504})
# Failures after which the server may or may not have received the request.
_MAYBE_SENT = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
# Failures before anything was sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryEvent:
    """Passed to `RetryPolicy.on_retry` before each wait (for logs and metrics)."""

    method: str
    path: str
    attempt: int  # 1 for the first retry
    delay: float
    status: int | None
    error: BaseException | None


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    # A `Retry-After` longer than this is not waited for: the RateLimitError is raised.
    max_retry_after: float = 120.0
    on_retry: Callable[[RetryEvent], None] | None = None

    def backoff_delay(self, attempt: int) -> float:
        cap = min(self.max_backoff, self.backoff * 2**attempt)
        return cap / 2 + random.uniform(0, cap / 2)

    def delay(
        self,
        call: Call[Any],
        attempt: int,
        response: httpx.Response | None = None,
        error: BaseException | None = None,
    ) -> float | None:
        """How long to wait before retry number `attempt + 1`, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if error is not None:
            if isinstance(error, _NOT_SENT) or (call.idempotent and isinstance(error, _MAYBE_SENT)):
                return self.backoff_delay(attempt)
            return None
        assert response is not None
        if response.status_code == 429:
            after = retry_after_seconds(response.headers)
            if after is None:
                return self.backoff_delay(attempt)
            if after > self.max_retry_after:
                return None
            # The window ends at a whole second: a little jitter spreads the comeback.
            return after + random.uniform(0, min(1.0, self.backoff))
        if response.status_code in RETRIED_STATUSES and call.idempotent:
            return self.backoff_delay(attempt)
        return None

    def announce(
        self,
        call: Call[Any],
        attempt: int,
        delay: float,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> None:
        status = response.status_code if response is not None else None
        log.info(
            "retrying %s %s in %.2f s (retry %d, %s)",
            call.method,
            call.path,
            delay,
            attempt + 1,
            status or type(error).__name__,
        )
        if self.on_retry is not None:
            self.on_retry(RetryEvent(call.method, call.path, attempt + 1, delay, status, error))


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: what to send, and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    has_body: bool = False
    # Multipart file fields, as httpx takes them (read again from the start on a retry).
    files: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool | None = None  # None: decided by the method
    # Sent without the API key: outputs are public links, possibly on another host.
    anonymous: bool = False

    def __post_init__(self) -> None:
        if self.idempotent is None:
            safe = self.method in IDEMPOTENT_METHODS or "Idempotency-Key" in self.headers
            object.__setattr__(self, "idempotent", safe)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        params = {k: v for k, v in (self.params or {}).items() if v is not None}
        request = http.build_request(
            self.method,
            self.path,
            params=params,
            json=self.json if self.has_body else None,
            files=self.files,
            headers=dict(self.headers),
        )
        if self.anonymous:
            request.headers.pop("x-api-key", None)
        return request


def download_call(url: str, anonymous: bool = True) -> Call[None]:
    return Call("GET", url, parse=lambda _: None, anonymous=anonymous)


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def client_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"phantomflow-python/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


@dataclass
class Attempts:
    """The retries of one call: after each failure, how long to wait, or the error."""

    policy: RetryPolicy
    call: Call[Any]
    what: str = ""
    count: int = 0

    def after_error(self, error: BaseException) -> float:
        """The wait before trying again after `error`; raises APIConnectionError instead
        when the policy gives up."""
        delay = self.policy.delay(self.call, self.count, error=error)
        if delay is None:
            what = self.what or f"{self.call.method} {self.call.path}"
            raise APIConnectionError(f"{what}: {error!r}") from error
        return self._next(delay, None, error)

    def after_answer(self, response: httpx.Response) -> float:
        """The wait before trying again after an error answer (its body read); raises the
        answer's APIError instead when the policy gives up."""
        delay = self.policy.delay(self.call, self.count, response=response)
        if delay is None:
            raise error_from_response(response)
        return self._next(delay, response, None)

    def after_close(self) -> float:
        """The wait before reopening an event stream the server closed before its end
        (it is stopping, or this client fell too far behind); raises when it keeps
        happening."""
        if self.count > self.policy.max_retries:
            raise APIConnectionError(f"{self.what or self.call.path}: the stream keeps closing")
        delay = self.policy.backoff_delay(min(self.count, 3)) if self.count else 0.0
        self.count += 1
        return delay

    def succeeded(self) -> None:
        """Progress was made (a stream delivered an event): the next failure is a first."""
        self.count = 0

    def _next(
        self, delay: float, response: httpx.Response | None, error: BaseException | None
    ) -> float:
        self.policy.announce(self.call, self.count, delay, response, error)
        self.count += 1
        return delay


def _with_timeout(request: httpx.Request, timeout: httpx.Timeout | None) -> httpx.Request:
    if timeout is not None:
        request.extensions["timeout"] = timeout.as_dict()
    return request


class SyncTransport:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: httpx.Timeout | float,
        retry: RetryPolicy,
        http: httpx.Client | None = None,
    ) -> None:
        self.retry = retry
        self.http = http or httpx.Client(
            base_url=base_url, headers=client_headers(api_key), timeout=timeout
        )

    def send(self, call: Call[T]) -> T:
        with self.stream(call, timeout=None, read=True) as response:
            return call.parse(response)

    def _attempt(
        self, call: Call[Any], timeout: httpx.Timeout | None, read: bool
    ) -> httpx.Response:
        response = self.http.send(_with_timeout(call.request(self.http), timeout), stream=True)
        if read or response.status_code >= 400:
            try:
                response.read()  # closes the response once read
            except BaseException:
                response.close()
                raise
        return response

    @contextmanager
    def stream(
        self, call: Call[Any], timeout: httpx.Timeout | None = STREAM_TIMEOUT, read: bool = False
    ) -> Iterator[httpx.Response]:
        """The answer to `call` after retries (with its body when `read`); errors raised."""
        attempts = Attempts(self.retry, call)
        while True:
            try:
                response = self._attempt(call, timeout, read)
            except httpx.TransportError as error:
                time.sleep(attempts.after_error(error))
                continue
            if response.status_code >= 400:
                time.sleep(attempts.after_answer(response))
                continue
            try:
                yield response
            finally:
                response.close()
            return

    def download(self, url: str, path: Path, anonymous: bool = True) -> Path:
        """Stream `url` into `path`; a transfer cut short starts again (up to the retries).
        Sent without the key unless `anonymous` is False (an asset's own file)."""
        call, part = download_call(url, anonymous), partial_path(path)
        attempts = Attempts(self.retry, call, what=f"download of {url}")
        while True:
            try:
                with (
                    self.stream(call, timeout=DEFAULT_TIMEOUT) as response,
                    open(part, "wb") as out,
                ):
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        out.write(chunk)
                part.replace(path)
                return path
            except httpx.TransportError as error:
                with _discarded_on_error(part):
                    time.sleep(attempts.after_error(error))

    def close(self) -> None:
        self.http.close()


class AsyncTransport:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: httpx.Timeout | float,
        retry: RetryPolicy,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.retry = retry
        self.http = http or httpx.AsyncClient(
            base_url=base_url, headers=client_headers(api_key), timeout=timeout
        )

    async def send(self, call: Call[T]) -> T:
        async with self.stream(call, timeout=None, read=True) as response:
            return call.parse(response)

    async def _attempt(
        self, call: Call[Any], timeout: httpx.Timeout | None, read: bool
    ) -> httpx.Response:
        request = _with_timeout(call.request(self.http), timeout)
        response = await self.http.send(request, stream=True)
        if read or response.status_code >= 400:
            try:
                await response.aread()  # closes the response once read
            except BaseException:
                await response.aclose()
                raise
        return response

    @asynccontextmanager
    async def stream(
        self, call: Call[Any], timeout: httpx.Timeout | None = STREAM_TIMEOUT, read: bool = False
    ) -> AsyncIterator[httpx.Response]:
        attempts = Attempts(self.retry, call)
        while True:
            try:
                response = await self._attempt(call, timeout, read)
            except httpx.TransportError as error:
                await asyncio.sleep(attempts.after_error(error))
                continue
            if response.status_code >= 400:
                await asyncio.sleep(attempts.after_answer(response))
                continue
            try:
                yield response
            finally:
                await response.aclose()
            return

    async def download(self, url: str, path: Path, anonymous: bool = True) -> Path:
        call, part = download_call(url, anonymous), partial_path(path)
        attempts = Attempts(self.retry, call, what=f"download of {url}")
        while True:
            try:
                async with self.stream(call, timeout=DEFAULT_TIMEOUT) as response:
                    with open(part, "wb") as out:
                        async for chunk in response.aiter_bytes(CHUNK_BYTES):
                            out.write(chunk)
                part.replace(path)
                return path
            except httpx.TransportError as error:
                with _discarded_on_error(part):
                    await asyncio.sleep(attempts.after_error(error))

    async def close(self) -> None:
        await self.http.aclose()


@contextmanager
def _discarded_on_error(part: Path) -> Iterator[None]:
    """A partial download is deleted when the download is given up."""
    try:
        yield
    except BaseException:
        part.unlink(missing_ok=True)
        raise
