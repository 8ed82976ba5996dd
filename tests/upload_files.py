"""Files to upload in tests, made by the test: real media (made with FFmpeg, once per
session) and hostile files posing as media."""

from __future__ import annotations

import functools
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import imageio_ffmpeg

FONTS = Path(__file__).resolve().parent.parent / "adapters" / "render" / "fonts"


@functools.cache
def _made(name: str, *args: str) -> bytes:
    folder = Path(tempfile.mkdtemp(prefix="upload-files-"))
    out = folder / name
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *args, str(out)],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


def png(width: int = 32, height: int = 24, colour: str = "red") -> bytes:
    return _made(
        "x.png", "-f", "lavfi", "-i", f"color={colour}:s={width}x{height}", "-frames:v", "1"
    )


def jpeg() -> bytes:
    return _made("x.jpg", "-f", "lavfi", "-i", "color=blue:s=40x30", "-frames:v", "1")


def mp4(seconds: float = 1.0, faststart: bool = True) -> bytes:
    flags = ["-movflags", "+faststart"] if faststart else []
    return _made(
        f"x-{seconds}-{faststart}.mp4",
        "-f", "lavfi", "-i", f"testsrc=s=64x48:r=10:d={seconds}",
        "-f", "lavfi", "-i", f"sine=d={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", *flags,
    )  # fmt: skip


def wav(seconds: float = 1.0) -> bytes:
    return _made(f"x-{seconds}.wav", "-f", "lavfi", "-i", f"sine=d={seconds}")


def mp3(seconds: float = 1.0) -> bytes:
    return _made(f"x-{seconds}.mp3", "-f", "lavfi", "-i", f"sine=d={seconds}")


def ttf() -> bytes:
    return (FONTS / "DejaVuSans.ttf").read_bytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG's signature and header claiming `width` × `height`, and a tiny body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + b"\x00" * 3
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(row))
        + _chunk(b"IEND", b"")
    )


def png_bomb(side: int = 10_000) -> bytes:
    """A real, valid 1-bit PNG of side × side black pixels: a few kilobytes that decode
    to `side`² pixels (100 million for the default)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    )


HTML = b"<!DOCTYPE html><html><head><title>x</title></head><body><video></video></body></html>\n"
TEXT = b"just some words\nthat are not a video at all\n"
M3U8 = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nhttp://127.0.0.1:1/a.ts\n#EXT-X-ENDLIST\n"
CONCAT = b"ffconcat version 1.0\nfile '/etc/passwd'\nfile 'http://127.0.0.1:1/x.mp4'\n"
CONCAT_PLAIN = b"file '/etc/passwd'\nduration 1\n"


def hostile() -> dict[str, bytes]:
    """Name (as the client gives it) -> bytes, each to be refused as UNSUPPORTED_FILE_TYPE."""
    whole = mp4()
    return {
        "notes.mp4": TEXT,
        "page.mp4": HTML,
        "truncated.mp4": whole[: len(whole) // 2],
        "truncated-moov-last.mp4": mp4(faststart=False)[: len(mp4(faststart=False)) - 200],
        "playlist.mp4": M3U8,
        "list.mp4": CONCAT,
        "concat.mp4": CONCAT_PLAIN,
        "huge.png": png_header_only(20_000, 100),
        "bomb.png": png_bomb(),
    }
