"""The upload route's multipart reader (api/multipart_stream.py), on a real aiohttp
server: bodies sent in chunks cut anywhere (one byte at a time too), delimiters
straddling chunk edges, data that looks like a delimiter, and bodies that break the
format."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.multipart_stream import (
    CutShort,
    MalformedMultipart,
    MultipartStream,
    boundary_of,
)

BOUNDARY = "XyZ-boundary-123"


async def parse(request: web.Request) -> web.Response:
    reader = MultipartStream(request.content, boundary_of(request.headers["Content-Type"]))
    parts = []
    try:
        while (part := await reader.next_part()) is not None:
            digest, size = hashlib.sha256(), 0
            while pieces := await reader.read_pieces():
                for piece in pieces:
                    digest.update(piece)
                    size += len(piece)
            parts.append([part.name, part.filename, size, digest.hexdigest()])
    except MalformedMultipart as malformed:
        return web.json_response({"malformed": str(malformed)}, status=400)
    except CutShort:
        return web.json_response({"cut": True}, status=400)
    return web.json_response({"parts": parts})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application()
    app.router.add_post("/", parse)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def body(parts: list[tuple[str, str | None, bytes]], preamble: bytes = b"") -> bytes:
    out = preamble
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\nepilogue".encode()


async def send(client: TestClient, raw: bytes, sizes: list[int] | None = None):
    async def chunks() -> AsyncIterator[bytes]:
        at = 0
        for size in sizes or [len(raw)]:
            yield raw[at : at + size]
            at += size
        if at < len(raw):
            yield raw[at:]

    response = await client.post(
        "/",
        data=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    return response.status, await response.json()


def expected(parts: list[tuple[str, str | None, bytes]]) -> list[list]:
    return [[n, f, len(d), hashlib.sha256(d).hexdigest()] for n, f, d in parts]


TRICKY = [
    ("file", "a.bin", os.urandom(300_000)),
    # Looks like a delimiter, but is not one: a CRLF and most of the boundary.
    ("files", "b.bin", b"x\r\n--" + BOUNDARY[:-1].encode() + b"\r\n--" + b"\r\n" * 3),
    ("files", "empty.bin", b""),
    ("note", None, b"plain field"),
]


async def test_parts_arrive_whole_however_the_body_is_cut(client):
    raw = body(TRICKY, preamble=b"ignored preamble\r\n")
    rng = random.Random(7)
    for sizes in (
        None,
        [1] * 400,  # the headers and first bytes one at a time
        [rng.randint(1, 70) for _ in range(3000)],  # delimiter-sized pieces
        [rng.randint(1, 65_536) for _ in range(40)],
    ):
        status, answer = await send(client, raw, sizes)
        assert status == 200, answer
        assert answer["parts"] == expected(TRICKY)


async def test_a_delimiter_split_at_every_point_of_a_chunk_edge_is_found(client):
    parts = [("file", "x", b"0123456789" * 10)]
    raw = body(parts)
    end = raw.index(f"\r\n--{BOUNDARY}--".encode())
    for cut in range(end - 3, end + len(BOUNDARY) + 6):
        status, answer = await send(client, raw, [cut, 5, 7])
        assert (status, answer["parts"]) == (200, expected(parts)), cut


async def test_a_body_without_its_closing_delimiter_is_cut_short(client):
    raw = body([("file", "x", b"data" * 1000)])
    status, answer = await send(client, raw[: len(raw) // 2])
    assert (status, answer) == (400, {"cut": True})


@pytest.mark.parametrize(
    "raw",
    [
        b"no boundary at all " * 5000,
        f"--{BOUNDARY}garbage\r\n".encode() + b"x" * 10,
        f"--{BOUNDARY}\r\n".encode() + b"X-Long: " + b"a" * 20_000 + b"\r\n\r\n",
        f"--{BOUNDARY}\r\nno colon here\r\n\r\ndata\r\n--{BOUNDARY}--".encode(),
        f"--{BOUNDARY}\r\nContent-Disposition: attachment\r\n\r\nd\r\n--{BOUNDARY}--".encode(),
    ],
)
async def test_bodies_that_break_the_format_are_malformed(client, raw):
    status, answer = await send(client, raw)
    assert status == 400 and "malformed" in answer, answer


def test_the_boundary_is_read_from_the_content_type():
    assert boundary_of('multipart/form-data; boundary="a b"') == "a b"
    for header in ("multipart/form-data", f"multipart/form-data; boundary={'x' * 71}"):
        with pytest.raises(MalformedMultipart):
            boundary_of(header)


class Pieces:
    """A body handed over in exactly these pieces (the network coalesces what a client
    sends, so a server cannot be made to see one-byte reads over a socket)."""

    def __init__(self, raw: bytes, sizes: list[int]) -> None:
        self.pieces: list[bytes] = []
        at = 0
        for size in sizes:
            self.pieces.append(raw[at : at + size])
            at += size
        self.pieces.append(raw[at:])
        self.pieces = [piece for piece in self.pieces if piece]

    async def readany(self) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


async def read_all(raw: bytes, sizes: list[int]) -> list[list]:
    reader = MultipartStream(Pieces(raw, sizes), BOUNDARY)  # type: ignore[arg-type]
    found = []
    while (part := await reader.next_part()) is not None:
        data = b""
        while pieces := await reader.read_pieces():
            data += b"".join(pieces)
        found.append([part.name, part.filename, len(data), hashlib.sha256(data).hexdigest()])
    return found


async def test_every_cut_of_the_body_into_reads_gives_the_same_parts():
    parts = TRICKY[1:]  # the small ones: every cut point is tried
    raw = body(parts, preamble=b"pre\r\n")
    for cut in range(1, len(raw)):
        assert await read_all(raw, [cut]) == expected(parts), cut
    assert await read_all(raw, [1] * len(raw)) == expected(parts)
    rng = random.Random(11)
    for _ in range(200):
        sizes = [rng.randint(1, 40) for _ in range(len(raw))]
        assert await read_all(raw, sizes) == expected(parts)


async def test_a_part_left_unread_is_skipped_to_the_next():
    raw = body(TRICKY)
    reader = MultipartStream(Pieces(raw, [7] * len(raw)), BOUNDARY)  # type: ignore[arg-type]
    names = []
    while (part := await reader.next_part()) is not None:
        names.append(part.name)  # its data never read
    assert names == [name for name, _, _ in TRICKY]
