"""What an uploaded file really is, from its bytes alone (never its name or MIME type).

- Fonts by their magic bytes and table directory: TrueType (`\\0\\1\\0\\0`, `true`),
  OpenType (`OTTO`), WOFF (`wOFF`).
- Still images (PNG, JPEG, GIF, WebP, BMP) by their header, whose dimensions are read
  here, before any decoder sees the file: more than MAX_IMAGE_SIDE pixels on a side, or
  more than MAX_IMAGE_PIXELS in all (a decompression bomb: a small file that decodes to
  gigabytes), is refused without decoding. Then FFmpeg decodes the one frame, so a
  damaged image is refused too.
- Video and audio by FFmpeg, opened once without decoding, allowed only the plain media
  containers the renderer reads (render/probe.py MEDIA_FORMATS): a playlist (m3u8), a
  concat or ffconcat script, text or HTML is not one of them. An MP4/MOV must be whole:
  its top-level boxes must tile the file exactly and hold a `moov` (a truncated upload
  fails this). A container FFmpeg recognises only "with a low score" is refused.

Anything else raises UnsupportedFile with the reason.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from phantomflow.adapters.render.probe import open_with_ffmpeg, parse_duration

MAX_IMAGE_SIDE = 16_384
MAX_IMAGE_PIXELS = 64 * 1024 * 1024  # e.g. 8192 × 8192
MAX_VIDEO_SIDE = 16_384
PROBE_TIMEOUT_SECONDS = 60.0
HEAD_BYTES = 64 * 1024


class UnsupportedFile(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProbedFile:
    type: str  # image, video, audio, font
    mime_type: str
    extension: str  # of its storage key, which serves it with this type
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


# FFmpeg's demuxer name -> (MIME type, extension) for video, and for audio only.
_VIDEO_FORMATS = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("video/mp4", "mp4"),
    "matroska,webm": ("video/webm", "webm"),
    "avi": ("video/x-msvideo", "avi"),
    "mpegts": ("video/mp2t", "ts"),
    "flv": ("video/x-flv", "flv"),
    "ogg": ("video/ogg", "ogv"),
    "asf": ("video/x-ms-asf", "asf"),
    "mpeg": ("video/mpeg", "mpg"),
}
_AUDIO_FORMATS = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("audio/mp4", "m4a"),
    "matroska,webm": ("audio/webm", "weba"),
    "ogg": ("audio/ogg", "ogg"),
    "mp3": ("audio/mpeg", "mp3"),
    "wav": ("audio/wav", "wav"),
    "aac": ("audio/aac", "aac"),
    "flac": ("audio/flac", "flac"),
    "w64": ("audio/x-w64", "w64"),
    "aiff": ("audio/aiff", "aiff"),
}
_IMAGES = {
    "png": ("image/png", "png"),
    "jpeg": ("image/jpeg", "jpg"),
    "gif": ("image/gif", "gif"),
    "webp": ("image/webp", "webp"),
    "bmp": ("image/bmp", "bmp"),
}
_FONTS = {
    b"\x00\x01\x00\x00": ("font/ttf", "ttf"),
    b"true": ("font/ttf", "ttf"),
    b"OTTO": ("font/otf", "otf"),
    b"wOFF": ("font/woff", "woff"),
}

_INPUT_LINE = re.compile(r"^Input #0, (.+?), from ")
_STREAM_LINE = re.compile(r"^\s*Stream #0:\d+.*?: (Video|Audio): (.*)$")
_SIZE = re.compile(r"\b(\d{1,6})x(\d{1,6})\b")


def probe_file(ffmpeg_exe: str, path: Path) -> ProbedFile:
    """What the file at `path` is; UnsupportedFile when it is none of what we take."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
    if head[:4] in _FONTS:
        return _font(head, size)
    image = image_header(head)
    if image is not None:
        return _image(ffmpeg_exe, path, *image)
    return _media(ffmpeg_exe, path, size)


# --- fonts ------------------------------------------------------------------------


def _font(head: bytes, size: int) -> ProbedFile:
    mime, extension = _FONTS[head[:4]]
    if extension == "woff":
        _check_woff(head, size)
    else:
        _check_sfnt(head, size)
    return ProbedFile("font", mime, extension)


def _check_sfnt(head: bytes, size: int) -> None:
    """A TrueType/OpenType table directory whose tables all lie inside the file."""
    if len(head) < 12:
        raise UnsupportedFile("a truncated font file")
    (tables,) = struct.unpack(">H", head[4:6])
    if not 1 <= tables <= 256 or len(head) < 12 + 16 * tables:
        raise UnsupportedFile("not a font file (its table directory is broken)")
    for index in range(tables):
        offset, length = struct.unpack(">II", head[12 + 16 * index + 8 : 12 + 16 * index + 16])
        if offset + length > size:
            raise UnsupportedFile("a truncated font file (a table lies past its end)")


def _check_woff(head: bytes, size: int) -> None:
    if len(head) < 44:
        raise UnsupportedFile("a truncated WOFF file")
    (length,) = struct.unpack(">I", head[8:12])
    (tables,) = struct.unpack(">H", head[12:14])
    if length != size:
        raise UnsupportedFile("a truncated WOFF file (its header gives another length)")
    if not 1 <= tables <= 256 or len(head) < 44 + 20 * tables:
        raise UnsupportedFile("not a WOFF font (its table directory is broken)")
    for index in range(tables):
        offset, compressed = struct.unpack(">II", head[44 + 20 * index + 4 : 44 + 20 * index + 12])
        if offset + compressed > size:
            raise UnsupportedFile("a truncated WOFF file (a table lies past its end)")


# --- still images -----------------------------------------------------------------


def image_header(head: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from a still image's header; None if `head` starts no
    image format we take. A header too short or broken to give dimensions raises."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise UnsupportedFile("a PNG without its header (IHDR)")
        width, height = struct.unpack(">II", head[16:24])
        return "png", width, height
    if head.startswith(b"\xff\xd8\xff"):
        return ("jpeg", *_jpeg_size(head))
    if head[:6] in (b"GIF87a", b"GIF89a"):
        if len(head) < 10:
            raise UnsupportedFile("a truncated GIF")
        width, height = struct.unpack("<HH", head[6:10])
        return "gif", width, height
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ("webp", *_webp_size(head))
    if head[:2] == b"BM" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return "bmp", abs(width), abs(height)
    return None


def _jpeg_size(head: bytes) -> tuple[int, int]:
    """The frame size from the first SOFn marker (within the first HEAD_BYTES)."""
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            break
        marker = head[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        (length,) = struct.unpack(">H", head[at + 2 : at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if at + 9 > len(head):
                break
            height, width = struct.unpack(">HH", head[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise UnsupportedFile("a JPEG whose frame size could not be read")


def _webp_size(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    raise UnsupportedFile("a WebP whose size could not be read")


def _image(ffmpeg_exe: str, path: Path, kind: str, width: int, height: int) -> ProbedFile:
    if width < 1 or height < 1:
        raise UnsupportedFile(f"an image of {width}x{height} pixels")
    if max(width, height) > MAX_IMAGE_SIDE:
        raise UnsupportedFile(
            f"an image of {width}x{height} pixels; at most {MAX_IMAGE_SIDE} on a side"
        )
    if width * height > MAX_IMAGE_PIXELS:
        raise UnsupportedFile(
            f"an image of {width}x{height} pixels; at most {MAX_IMAGE_PIXELS} pixels in all"
        )
    # Decode the first frame, now that its size is known to be bounded: a damaged or
    # truncated image fails here.
    completed = _ffmpeg(ffmpeg_exe, path, ["-frames:v", "1", "-f", "null", "-"], xerror=True)
    if completed.returncode != 0:
        raise UnsupportedFile(f"a damaged {kind.upper()} image ({_reason(completed.stderr)})")
    mime, extension = _IMAGES[kind]
    return ProbedFile("image", mime, extension, width, height)


# --- video and audio --------------------------------------------------------------


def _media(ffmpeg_exe: str, path: Path, size: int) -> ProbedFile:
    completed = _ffmpeg(ffmpeg_exe, path, [])
    lines = completed.stderr.splitlines()
    container = next((m.group(1) for line in lines if (m := _INPUT_LINE.match(line))), None)
    if container is None or "detected only with low score" in completed.stderr:
        raise UnsupportedFile(f"not an image, video, audio or font file ({_reason(lines)})")
    if container.endswith("_pipe"):
        raise UnsupportedFile(f"an image format we do not take ({container})")
    if container == "mov,mp4,m4a,3gp,3g2,mj2":
        _check_whole_mp4(path, size)
    video: tuple[int, int] | None = None
    audio = False
    for line in lines:
        stream = _STREAM_LINE.match(line)
        if stream is None:
            continue
        kind, rest = stream.groups()
        if kind == "Audio":
            audio = True
        elif "(attached pic)" not in rest and video is None:  # cover art is not a video
            found = _SIZE.search(rest)
            video = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    duration = parse_duration(lines)
    if video is None and not audio:
        raise UnsupportedFile("a file with neither picture nor sound")
    if not duration:
        raise UnsupportedFile(f"a {container} file without a duration")
    if video is not None:
        width, height = video
        if not (0 < width <= MAX_VIDEO_SIDE and 0 < height <= MAX_VIDEO_SIDE):
            raise UnsupportedFile(f"a video of {width}x{height} pixels")
        mime, extension = _VIDEO_FORMATS.get(container, (None, None))
        if mime is None or extension is None:
            raise UnsupportedFile(f"a video container we do not take ({container})")
        return ProbedFile("video", mime, extension, width, height, duration)
    mime, extension = _AUDIO_FORMATS.get(container, (None, None))
    if mime is None or extension is None:
        raise UnsupportedFile(f"an audio container we do not take ({container})")
    return ProbedFile("audio", mime, extension, None, None, duration)


def _check_whole_mp4(path: Path, size: int) -> None:
    """The top-level boxes tile the file exactly and one of them is `moov`."""
    at = 0
    kinds: set[bytes] = set()
    with path.open("rb") as file:
        while at < size:
            file.seek(at)
            header = file.read(16)
            if len(header) < 8:
                raise UnsupportedFile("a truncated MP4 (a box header is cut)")
            box, kind = struct.unpack(">I4s", header[:8])
            if box == 1:
                if len(header) < 16:
                    raise UnsupportedFile("a truncated MP4 (a box header is cut)")
                (box,) = struct.unpack(">Q", header[8:16])
            elif box == 0:
                box = size - at
            if box < 8 or at + box > size:
                raise UnsupportedFile(
                    f"a truncated MP4 (its {kind.decode('latin-1')!r} box runs past the end)"
                )
            kinds.add(kind)
            at += box
    if b"moov" not in kinds:
        raise UnsupportedFile("an MP4 without its index (moov): truncated or still being written")


def _ffmpeg(
    ffmpeg_exe: str, path: Path, output: list[str], xerror: bool = False
) -> subprocess.CompletedProcess[str]:
    try:
        return open_with_ffmpeg(
            ffmpeg_exe,
            path,
            timeout=PROBE_TIMEOUT_SECONDS,
            input_options=["-xerror", "-err_detect", "explode"] if xerror else [],
            output=output,
        )
    except subprocess.TimeoutExpired:
        raise UnsupportedFile("FFmpeg could not read the file in time") from None


def _reason(stderr: str | list[str]) -> str:
    lines = stderr.splitlines() if isinstance(stderr, str) else stderr
    found = [line.strip() for line in lines if "rror" in line or "Invalid" in line]
    text = found[-1] if found else "FFmpeg does not recognise it"
    return re.sub(r"file:\S+", "the file", text)[:200]
