"""Probing media: what FFmpeg sees in a downloaded source, and how long a render plays.

Each downloaded file is opened once by FFmpeg, without decoding, to learn whether it
is media at all and which streams it has; a source used as a video must have a
picture, one used as audio must have sound. FFmpeg may only read it as one of the
plain media containers of MEDIA_FORMATS (the filter graph's inputs use the same
list), so a "video" that is really an HLS playlist or a concat script pointing at
other files is refused.

A finished render's duration is read from its MP4 header (mp4.py), not decoded.
"""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from phantomflow.adapters.render.failure import RenderFailed
from phantomflow.adapters.render.mp4 import Mp4HeaderError, video_duration
from phantomflow.adapters.render.process import Deadline, meaningful_error_line
from phantomflow.domain.script import MediaSource

PROBE_TIMEOUT_SECONDS = 30.0
PROBE_CONCURRENCY = 4

# The demuxers FFmpeg may use on a downloaded file: plain media containers and still
# images. Not hls, concat, ffconcat, image2 patterns, playlists or anything else that
# opens further files or URLs.
MEDIA_FORMATS = (
    "mov,matroska,avi,mpegts,flv,ogg,asf,mpeg,"
    "png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,tiff_pipe,gif,"
    "wav,mp3,aac,flac,w64,aiff"
)
_STREAM_LINE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Video|Audio): ")
_DURATION_LINE = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")


@dataclass(frozen=True)
class MediaInfo:
    """A downloaded source as FFmpeg sees it."""

    path: Path
    has_video: bool
    has_audio: bool
    duration: float | None


def probe_sources(
    ffmpeg_exe: str,
    sources: Sequence[MediaSource],
    files: Mapping[str, Path],
    deadline: Deadline,
) -> dict[str, MediaInfo]:
    """Each source's file (`files`, by URL) as FFmpeg sees it, checked against its use.

    Raises RenderFailed for a file that is not media, or lacks the picture or sound
    its use needs."""
    # Each file is opened once (named by its first use), all of them at once; what
    # is wrong is reported for the first source, in script order, that it concerns.
    first_use: dict[str, str] = {}
    for source in sources:
        first_use.setdefault(source.url, source.path)
    with concurrent.futures.ThreadPoolExecutor(min(len(first_use), PROBE_CONCURRENCY)) as pool:
        probes = {
            url: pool.submit(probe, ffmpeg_exe, files[url], where, deadline)
            for url, where in first_use.items()
        }
    media: dict[str, MediaInfo] = {}
    for source in sources:
        info = media[source.url] = probes[source.url].result()
        wanted = info.has_audio if source.kind == "audio" else info.has_video
        if not wanted:
            what = "sound" if source.kind == "audio" else "picture"
            raise RenderFailed(f"{source.path}: the file has no {what} ({source.kind} expected)")
    return media


def probe(ffmpeg_exe: str, path: Path, where: str, deadline: Deadline) -> MediaInfo:
    """The file at `path` as FFmpeg sees it, opened once (no decoding) to learn its
    streams; RenderFailed naming `where` (the source's script path) if it is not media."""
    try:
        completed = open_with_ffmpeg(
            ffmpeg_exe, path, timeout=max(min(PROBE_TIMEOUT_SECONDS, deadline.remaining()), 0.1)
        )
    except subprocess.TimeoutExpired:
        raise RenderFailed(f"{where}: FFmpeg could not read the file in time") from None
    lines = completed.stderr.splitlines()
    kinds = {match.group(1) for line in lines if (match := _STREAM_LINE.match(line))}
    if not kinds:
        errors = [line for line in lines if "rror" in line or "Invalid" in line]
        reason = meaningful_error_line(errors, completed.returncode).replace(
            f"file:{path}", "the file"
        )
        raise RenderFailed(f"{where}: not a media file FFmpeg can read ({reason})")
    return MediaInfo(
        path=path,
        has_video="Video" in kinds,
        has_audio="Audio" in kinds,
        duration=parse_duration(lines),
    )


def open_with_ffmpeg(
    ffmpeg_exe: str,
    path: Path,
    *,
    timeout: float,
    input_options: Sequence[str] = (),
    output: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """FFmpeg run on the local file `path` alone: only the `file` protocol and the
    demuxers of MEDIA_FORMATS, so a hostile file cannot make it open anything else.
    With no `output` it only opens the file and lists its streams on stderr.
    Raises subprocess.TimeoutExpired after `timeout` seconds (each caller says why
    in its own error)."""
    args = [
        ffmpeg_exe,
        "-hide_banner",
        "-nostdin",
        *input_options,
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        MEDIA_FORMATS,
        "-i",
        f"file:{path}",
        *output,
    ]
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def parse_duration(lines: Sequence[str]) -> float | None:
    """The playing time FFmpeg's `Duration: HH:MM:SS.ss` line states, in seconds;
    None where it states none (a still image, or N/A)."""
    for line in lines:
        if match := _DURATION_LINE.search(line):
            hours, minutes, seconds = match.groups()
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def measure_duration(path: Path) -> float:
    """The playing time of the first video stream of the MP4 `path`, in seconds.

    Read from the file's header (what ffprobe reports), not decoded: decoding a
    1080p render again cost about a tenth of its encoding."""
    try:
        return video_duration(path)
    except (Mp4HeaderError, OSError) as error:
        raise RenderFailed(f"could not measure the rendered video's duration ({error})") from None
