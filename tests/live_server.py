"""Servers the client tests talk to: the embedded system on loopback, and a proxy in
front of it that breaks connections the way networks and load balancers do.

`LiveServer` is the whole embedded system (API, worker, followers, SQLite) on a free
port, in a thread of its own, so a blocking client in the test's thread can call it.
`FaultProxy` forwards one request per connection and, when told, answers a request
itself with a 5xx, loses the answer after the server has handled the request, or cuts
an event stream after a number of events.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from phantomflow.adapters.ratelimit import MemoryRateLimiter
from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Embedded
from phantomflow.api.services import Services
from phantomflow.domain.application import OpenedAccount
from tests.conftest import assert_credits_reconcile


class _LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class LiveServer:
    def __init__(self, data_dir: Path, rate_window_seconds: int | None = None) -> None:
        # Bound now and kept: a port picked and bound later could be taken meanwhile.
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        settings = Settings(data_dir=data_dir, allow_private_urls=True)
        self.system = Embedded(settings, public_url=self.url)
        self.services = Services(self.system.runtime)
        if rate_window_seconds is not None:
            self.services.rate_limiter = MemoryRateLimiter(rate_window_seconds)
        self.app = create_app(self.services)
        self._loop: _LoopThread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> LiveServer:
        self.system.start()
        self._loop = _LoopThread("live-server")
        self._runner = web.AppRunner(self.app, handler_cancellation=True)
        self._loop.run(self._runner.setup())
        self._loop.run(web.SockSite(self._runner, self.socket).start())
        return self

    def stop(self) -> None:
        try:
            if self._loop is not None and self._runner is not None:
                self._loop.run(self._runner.cleanup())
                self._loop.close()
            assert_credits_reconcile(self.system.runtime)
        finally:
            self.system.stop()

    def open_account(self, plan: str = "pro", credits: int = 1000) -> OpenedAccount:
        return self.system.runtime.app.open_account(plan=plan, credits=credits)

    def change_plan(self, account_id, plan: str, requests_per_minute: int | None = None) -> None:
        self.system.runtime.app.change_plan(account_id, plan, requests_per_minute, None)
        self.services.limits.entries.pop(account_id, None)


# --- the proxy --------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Fault:
    """What to do to the next request that `matches`."""

    matches: Callable[[Seen], bool]
    status: int | None = None  # answer this status without forwarding
    lose_answer: bool = False  # forward, then drop the connection once the answer starts
    cut_after_events: int | None = None  # forward an event stream, cut after n events


@dataclass
class FaultProxy:
    upstream_port: int
    port: int = 0  # known once started
    faults: deque[Fault] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._loop = _LoopThread("fault-proxy")
        self._server = self._loop.run(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        # Closed on its own loop: asyncio's server is not safe to close from another
        # thread (a connection ending meanwhile met a half-closed server).
        self._loop.run(self._close())
        self._loop.close()

    async def _close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def add(self, fault: Fault) -> None:
        self.faults.append(fault)

    def requests_to(self, method: str, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method and seen.path == path]

    def _take_fault(self, seen: Seen) -> Fault | None:
        for fault in list(self.faults):
            if fault.matches(seen):
                self.faults.remove(fault)
                return fault
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        seen = Seen(method, target.split("?", 1)[0], headers)
        self.seen.append(seen)
        fault = self._take_fault(seen)
        try:
            if fault is not None and fault.status is not None:
                await self._answer(writer, fault.status)
                return
            await self._forward(lines, body, writer, fault)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, status: int) -> None:
        payload = b'{"error":{"code":"UPSTREAM_UNAVAILABLE","message":"proxy fault"}}'
        writer.write(
            f"HTTP/1.1 {status} Proxy Fault\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    async def _forward(
        self, lines: list[str], body: bytes, writer: asyncio.StreamWriter, fault: Fault | None
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            # One request per connection: the server closes after its answer.
            kept = [
                line for line in lines[1:] if line and not line.lower().startswith("connection:")
            ]
            request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""])
            up_writer.write(request.encode("latin-1") + body)
            await up_writer.drain()
            if fault is not None and fault.lose_answer:
                await up_reader.read(1)  # the server has handled the request
                writer.transport.abort()
                return
            if fault is not None and fault.cut_after_events is not None:
                await self._cut_stream(up_reader, writer, fault.cut_after_events)
                return
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()

    async def _cut_stream(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, events: int
    ) -> None:
        """Forward whole events (with the end of their HTTP chunk) until `events` events
        with an id have passed, then cut the connection as a network would."""
        pending, passed = b"", 0
        while chunk := await up_reader.read(1024):
            pending += chunk
            while (end := pending.find(b"\n\n")) >= 0:
                end += 2
                if pending[end : end + 2] == b"\r\n":
                    end += 2
                event, pending = pending[:end], pending[end:]
                writer.write(event)
                if b"id: " in event:
                    passed += 1
                    if passed >= events:
                        await writer.drain()
                        writer.transport.abort()
                        return
            await writer.drain()
