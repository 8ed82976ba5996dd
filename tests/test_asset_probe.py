"""What an uploaded file is, from its bytes: the formats taken and the headers read
before any decoder runs (adapters/asset_probe.py). The hostile files are refused over
HTTP in tests/test_assets_api.py."""

from __future__ import annotations

import struct
from pathlib import Path

import imageio_ffmpeg
import pytest

from phantomflow.adapters.asset_probe import UnsupportedFile, image_header, probe_file
from tests import upload_files as files

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def probed(tmp_path: Path, content: bytes):
    path = tmp_path / "upload"
    path.write_bytes(content)
    return probe_file(FFMPEG, path)


def woff(tables: int = 1, declared: int | None = None, size: int = 72) -> bytes:
    header = b"wOFF" + b"\0\1\0\0" + struct.pack(">IH", declared or size, tables)
    header += b"\0" * (44 - len(header))
    directory = b"".join(
        b"glyf" + struct.pack(">IIII", 44 + 20 * tables, 4, 4, 0) for _ in range(tables)
    )
    body = header + directory
    return body + b"\0" * (size - len(body))


def test_media_of_each_kind_is_typed_with_its_size_and_duration(tmp_path):
    image = probed(tmp_path, files.jpeg())
    assert (image.type, image.mime_type, image.width, image.height) == (
        "image",
        "image/jpeg",
        40,
        30,
    )
    audio = probed(tmp_path, files.mp3())
    assert (audio.type, audio.mime_type, audio.extension) == ("audio", "audio/mpeg", "mp3")
    assert audio.duration_seconds == pytest.approx(1.0, abs=0.1)
    video = probed(tmp_path, files.mp4(faststart=False))  # its index at the end: still whole
    assert (video.type, video.width, video.height) == ("video", 64, 48)


def test_fonts_are_known_by_their_magic_bytes_and_must_be_whole(tmp_path):
    assert probed(tmp_path, files.ttf()).mime_type == "font/ttf"
    assert probed(tmp_path, woff()).mime_type == "font/woff"
    with pytest.raises(UnsupportedFile, match="truncated"):
        probed(tmp_path, files.ttf()[:5000])
    with pytest.raises(UnsupportedFile, match="truncated"):
        probed(tmp_path, woff(declared=999))


def test_image_dimensions_are_read_from_the_header_of_each_format():
    gif = b"GIF89a" + struct.pack("<HH", 300, 200) + b"\0" * 10
    webp = (
        b"RIFF\0\0\0\0WEBPVP8X"
        + b"\0" * 8
        + (1999).to_bytes(3, "little")
        + (999).to_bytes(3, "little")
    )
    bmp = b"BM" + b"\0" * 16 + struct.pack("<ii", 640, -480) + b"\0" * 8
    assert image_header(files.png(17, 9)) == ("png", 17, 9)
    assert image_header(files.jpeg()) == ("jpeg", 40, 30)
    assert image_header(gif) == ("gif", 300, 200)
    assert image_header(webp) == ("webp", 2000, 1000)
    assert image_header(bmp) == ("bmp", 640, 480)
    assert image_header(files.TEXT) is None


def test_an_image_whose_pixels_do_not_decode_is_refused(tmp_path):
    damaged = files.png_header_only(64, 64)  # a header for 64 rows, data for one
    with pytest.raises(UnsupportedFile, match="damaged"):
        probed(tmp_path, damaged)


def test_a_bomb_is_refused_from_its_header_without_decoding(tmp_path):
    with pytest.raises(UnsupportedFile, match="pixels in all"):
        probed(tmp_path, files.png_bomb())
    with pytest.raises(UnsupportedFile, match="on a side"):
        probed(tmp_path, files.png_header_only(16_385, 1))
