"""A streaming reader of `multipart/form-data` bodies, for uploads.

aiohttp's part reader finds the boundary in a window of the previous chunk and this
one, built anew for every chunk: each byte of an upload was copied twice more than
needed, about a third of the API process's CPU for a large file (docs/performance.md).
This reader looks for the delimiter in each chunk as it arrives, across a chunk's edge
only in the few bytes a delimiter can straddle, and hands out views of the chunks it
received (no copy).

RFC 2046/7578: the body is `--boundary CRLF headers CRLF CRLF data` parts, each data
ending at `CRLF --boundary`, the last delimiter followed by `--`. A preamble (before the
first delimiter) and an epilogue (after the last) are ignored. A part's headers are at
most MAX_HEADER_BYTES; a body that ends before its closing delimiter is `CutShort`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from aiohttp import StreamReader
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

MAX_HEADER_BYTES = 16 * 1024
MAX_PREAMBLE_BYTES = 64 * 1024
MAX_HEADERS = 32


class MalformedMultipart(ValueError):
    """The body is not multipart as its Content-Type says."""


class CutShort(Exception):
    """The body ended before its closing delimiter (the client went away)."""


@dataclass(frozen=True)
class PartHeaders:
    name: str | None
    filename: str | None


def boundary_of(content_type_header: str) -> str:
    """The `boundary` parameter of a multipart Content-Type; MalformedMultipart if it
    has none or an impossible one (RFC 2046: 1 to 70 characters)."""
    message = Message()
    message["content-type"] = content_type_header
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise MalformedMultipart("the Content-Type has no valid boundary")
    return boundary


class MultipartStream:
    def __init__(self, content: StreamReader, boundary: str) -> None:
        self._content = content
        self._delimiter = b"\r\n--" + boundary.encode("latin-1", "replace")
        # What has been received and not handed out. It starts with a CRLF so that a
        # first delimiter at the very start of the body looks like every other.
        self._buffer = b"\r\n"
        self._in_body = False
        self._done = False
        self._started = False

    async def _more(self) -> bytes:
        chunk = await self._content.readany()
        if not chunk:
            raise CutShort("the body ended before its closing boundary")
        return chunk

    async def _at_least(self, size: int) -> None:
        while len(self._buffer) < size:
            self._buffer += await self._more()

    async def next_part(self) -> PartHeaders | None:
        """The next part's headers, the rest of the current part skipped; None after
        the closing delimiter."""
        if self._done:
            return None
        while self._in_body:
            await self.read_pieces()
        if not self._started:
            await self._skip_preamble()
            self._started = True
        delimiter = len(self._delimiter)
        await self._at_least(delimiter + 2)
        after = self._buffer[delimiter : delimiter + 2]
        if after == b"--":
            self._done = True
            return None
        rest = self._buffer[delimiter:].lstrip(b" \t")  # transport padding
        while len(rest) < 2:
            rest += await self._more()
        if not rest.startswith(b"\r\n"):
            raise MalformedMultipart("a boundary is not followed by a line end")
        self._buffer = rest[2:]
        return await self._headers()

    async def _skip_preamble(self) -> None:
        while (found := self._buffer.find(self._delimiter)) < 0:
            if len(self._buffer) > MAX_PREAMBLE_BYTES:
                raise MalformedMultipart("no boundary where the body should start")
            self._buffer += await self._more()
        self._buffer = self._buffer[found:]

    async def _headers(self) -> PartHeaders:
        while True:
            if self._buffer.startswith(b"\r\n"):  # a part without headers
                block, self._buffer = b"", self._buffer[2:]
                break
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                block, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
                break
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise MalformedMultipart(f"a part's headers are over {MAX_HEADER_BYTES} bytes")
            self._buffer += await self._more()
        if len(block) > MAX_HEADER_BYTES:
            raise MalformedMultipart(f"a part's headers are over {MAX_HEADER_BYTES} bytes")
        lines = block.split(b"\r\n") if block else []
        if len(lines) > MAX_HEADERS:
            raise MalformedMultipart(f"a part has more than {MAX_HEADERS} headers")
        name = filename = None
        for line in lines:
            field, colon, value = line.partition(b":")
            if not colon or not field.strip():
                raise MalformedMultipart("a part's header line has no name")
            if field.strip().lower() == b"content-disposition":
                kind, params = parse_content_disposition(value.decode("utf-8", "replace").strip())
                if kind != "form-data":
                    raise MalformedMultipart("a part is not form-data")
                name = params.get("name")
                filename = content_disposition_filename(params, "filename")
        self._in_body = True
        return PartHeaders(name, filename)

    async def read_pieces(self) -> list[bytes | memoryview]:
        """The next pieces of the current part's data (views of what was received, not
        copies), in order; an empty list at its end."""
        if not self._in_body:
            return []
        delimiter = self._delimiter
        keep = len(delimiter) - 1  # a delimiter's start can hide in this many last bytes
        kept = self._buffer
        while True:
            found = kept.find(delimiter)
            if found >= 0:
                return self._end(kept, found)
            if len(kept) > keep:
                return [self._hold_back(kept)]
            chunk = await self._more()
            if len(chunk) < keep:  # too short to settle anything: gather more
                kept += chunk
                self._buffer = kept
                continue
            # Does a delimiter start in what was kept and end in the chunk? (The chunk
            # holds the rest of any that does: it is at least `keep` long.)
            edge = kept + chunk[:keep]
            found = edge.find(delimiter)
            if 0 <= found < len(kept):
                self._buffer = edge + chunk[keep:]
                return self._end(self._buffer, found)
            # No: what was kept is data; the chunk is looked at on its own.
            found = chunk.find(delimiter)
            if found >= 0:
                return [kept, *self._end(chunk, found)]
            return [kept, self._hold_back(chunk)]

    def _end(self, data: bytes, found: int) -> list[bytes | memoryview]:
        """The part's data ends at `found` in `data`; the delimiter is kept."""
        self._buffer = data[found:]
        self._in_body = False
        return [memoryview(data)[:found]] if found else []

    def _hold_back(self, data: bytes) -> memoryview:
        """All of `data` but the bytes a delimiter could start in, which are kept."""
        cut = len(data) - (len(self._delimiter) - 1)
        self._buffer = data[cut:]
        return memoryview(data)[:cut]
