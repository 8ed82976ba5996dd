"""Reading an MP4's video duration from its header, on files assembled box by box.

Real renders are checked against ffprobe in test_renderer.py; these cover the shapes
FFmpeg does not write for us (moov last, 64-bit boxes, version 1 headers) and damage.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from phantomflow.adapters.render.mp4 import Mp4HeaderError, video_duration


def box(kind: bytes, *children: bytes) -> bytes:
    body = b"".join(children)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def large_box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body


def mvhd(timescale: int, version: int = 0) -> bytes:
    if version == 1:
        body = struct.pack(">B3xQQIQ", 1, 0, 0, timescale, 0)
    else:
        body = struct.pack(">B3xIIII", 0, 0, 0, timescale, 0)
    return box(b"mvhd", body + bytes(80))


def trak(handler: bytes, duration: int, version: int = 0) -> bytes:
    if version == 1:
        tkhd = struct.pack(">B3xQQI4xQ", 1, 0, 0, 1, duration)
    else:
        tkhd = struct.pack(">B3xIII4xI", 0, 0, 0, 1, duration)
    hdlr = struct.pack(">B3xI4s12x", 0, 0, handler) + b"\x00"
    return box(b"trak", box(b"tkhd", tkhd + bytes(60)), box(b"mdia", box(b"hdlr", hdlr)))


def write(tmp_path: Path, *boxes: bytes) -> Path:
    path = tmp_path / "movie.mp4"
    path.write_bytes(box(b"ftyp", b"isom\x00\x00\x02\x00") + b"".join(boxes))
    return path


def test_the_video_tracks_duration_in_the_movies_timescale(tmp_path: Path):
    moov = box(b"moov", mvhd(48000), trak(b"soun", 481024), trak(b"vide", 67200))
    path = write(tmp_path, moov, box(b"mdat", bytes(1000)))

    assert video_duration(path) == pytest.approx(1.4)


def test_a_moov_after_the_media_data_is_found_by_skipping_it(tmp_path: Path):
    moov = box(b"moov", mvhd(1000), trak(b"vide", 2500))
    path = write(tmp_path, large_box(b"mdat", bytes(100_000)), box(b"free"), moov)

    assert video_duration(path) == pytest.approx(2.5)


def test_version_1_headers_have_64_bit_times(tmp_path: Path):
    moov = box(b"moov", mvhd(90000, version=1), trak(b"vide", 90000 * 7, version=1))
    path = write(tmp_path, moov)

    assert video_duration(path) == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("boxes", "reason"),
    [
        ((box(b"mdat", bytes(10)),), "no moov"),
        ((box(b"moov", mvhd(1000), trak(b"soun", 1000)),), "no video track"),
        ((box(b"moov", mvhd(1000), trak(b"vide", 0)),), "no duration"),
        ((box(b"moov", mvhd(1000), trak(b"vide", 0xFFFF_FFFF)),), "no duration"),
        ((box(b"moov", mvhd(1000), trak(b"vide", 1000))[:-20],), "ends inside a box"),
        ((struct.pack(">I4s", 4, b"moov"),), "corrupt box size"),
    ],
)
def test_what_is_not_a_readable_mp4_header_is_refused(
    tmp_path: Path, boxes: tuple[bytes, ...], reason: str
):
    with pytest.raises(Mp4HeaderError, match=reason):
        video_duration(write(tmp_path, *boxes))
