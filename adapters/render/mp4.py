"""Reading an MP4's header: how long its picture plays, without decoding a frame.

An MP4 (ISO base media file) is a tree of boxes, each a 32-bit size and a 4-letter
type. The index, `moov`, holds the movie header `mvhd` (the movie's timescale) and
one `trak` per track, whose `tkhd` gives the track's presented duration in that
timescale (its edit list applied: encoder delay and priming are not counted) and
whose `mdia/hdlr` says what the track is (`vide`, `soun`, ...). This is what
ffprobe reports as the video stream's duration, read in microseconds instead of a
second FFmpeg pass that decodes the whole file.

Renders are written with `+faststart`, so `moov` comes first; a file with `moov`
after its media data is read too, by seeking past the data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# A `moov` larger than this is not one of ours (a 10-minute render's is ~1 MiB).
MAX_MOOV_BYTES = 64 * 1024 * 1024


class Mp4HeaderError(Exception):
    """The file has no readable MP4 index, or no video track with a duration."""


def video_duration(path: Path) -> float:
    """The presented duration, in seconds, of the first video track of an MP4 file."""
    with path.open("rb") as file:
        moov = _read_moov(file)
    timescale = 0
    for kind, body in _boxes(moov):
        if kind == b"mvhd":
            timescale = _movie_timescale(body)
        elif kind == b"trak" and _handler(body) == b"vide":
            if timescale <= 0:
                raise Mp4HeaderError("no movie header (mvhd) before the tracks")
            duration = _track_duration(body)
            if duration <= 0:
                raise Mp4HeaderError("the video track has no duration")
            return duration / timescale
    raise Mp4HeaderError("no video track")


def _read_moov(file: BinaryIO) -> bytes:
    """The body of the top-level `moov` box, skipping (not reading) every other box."""
    while True:
        header = file.read(8)
        if len(header) < 8:
            raise Mp4HeaderError("no moov box")
        size, kind = struct.unpack(">I4s", header)
        header_size = 8
        if size == 1:
            (size,) = struct.unpack(">Q", _exactly(file, 8))
            header_size = 16
        elif size == 0:  # the box runs to the end of the file
            if kind != b"moov":
                raise Mp4HeaderError("no moov box")
            return file.read(MAX_MOOV_BYTES)
        if size < header_size:
            raise Mp4HeaderError(f"corrupt box size {size}")
        if kind == b"moov":
            if size > MAX_MOOV_BYTES:
                raise Mp4HeaderError(f"moov box too large ({size} bytes)")
            return _exactly(file, size - header_size)
        file.seek(size - header_size, 1)


def _boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The boxes directly inside `data`: (type, body)."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        header_size = 8
        if size == 1:
            if offset + 16 > len(data):
                raise Mp4HeaderError("truncated box header")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header_size = 16
        elif size == 0:
            size = len(data) - offset
        if size < header_size or offset + size > len(data):
            raise Mp4HeaderError(f"corrupt {kind!r} box")
        yield kind, data[offset + header_size : offset + size]
        offset += size


def _child(data: bytes, wanted: bytes) -> bytes | None:
    return next((body for kind, body in _boxes(data) if kind == wanted), None)


def _movie_timescale(mvhd: bytes) -> int:
    # version 0: flags, creation and modification (32-bit), then timescale;
    # version 1: the two times are 64-bit.
    offset = 20 if _version(mvhd) == 1 else 12
    return _unpack(">I", mvhd, offset)


def _track_duration(trak: bytes) -> int:
    """The track's `tkhd` duration, in the movie's timescale."""
    tkhd = _child(trak, b"tkhd")
    if tkhd is None:
        raise Mp4HeaderError("a track without a header (tkhd)")
    # version 0: flags, creation, modification, track id, reserved (32-bit each), then
    # a 32-bit duration; version 1: 64-bit times and duration. All ones means unknown.
    if _version(tkhd) == 1:
        duration = _unpack(">Q", tkhd, 28)
        return 0 if duration == 0xFFFF_FFFF_FFFF_FFFF else duration
    duration = _unpack(">I", tkhd, 20)
    return 0 if duration == 0xFFFF_FFFF else duration


def _handler(trak: bytes) -> bytes | None:
    """The track's handler type (`vide`, `soun`, ...) from `mdia/hdlr`."""
    mdia = _child(trak, b"mdia")
    hdlr = _child(mdia, b"hdlr") if mdia is not None else None
    if hdlr is None or len(hdlr) < 12:
        return None
    return hdlr[8:12]  # after version, flags and pre_defined


def _version(box: bytes) -> int:
    if not box:
        raise Mp4HeaderError("empty full box")
    return box[0]


def _unpack(fmt: str, data: bytes, offset: int) -> int:
    if offset + struct.calcsize(fmt) > len(data):
        raise Mp4HeaderError("truncated header box")
    return int(struct.unpack_from(fmt, data, offset)[0])


def _exactly(file: BinaryIO, count: int) -> bytes:
    data = file.read(count)
    if len(data) != count:
        raise Mp4HeaderError("the file ends inside a box")
    return data
