"""Inspecting rendered videos in tests: stream metadata with ffprobe, pixels with FFmpeg.

ffprobe is Debian's (only tests use it; the product uses the imageio-ffmpeg binary).
Without it, ffprobe-based tests skip, except in CI where they fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import imageio_ffmpeg

from tests.conftest import service_missing

FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"


class Recorder:
    """A renderer's progress callback that keeps every (progress, stage) it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []
        self.media_cache: list[dict[str, int]] = []  # each report's, when it has one

    def __call__(
        self, progress: float, stage: str, *, media_cache: dict[str, int] | None = None
    ) -> None:
        self.calls.append((progress, stage))
        if media_cache is not None:
            self.media_cache.append(media_cache)


def run_ffprobe(*args: str) -> bytes:
    """ffprobe's standard output for these arguments (errors only on stderr)."""
    if not Path(FFPROBE).exists():
        service_missing(f"ffprobe ({FFPROBE}, Debian package ffmpeg; scripts/test installs it)")
    return subprocess.run(
        [FFPROBE, "-v", "error", *args], capture_output=True, check=True, timeout=30
    ).stdout


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON description of `path`: {"streams": [...], "format": {...}}."""
    return json.loads(
        run_ffprobe("-print_format", "json", "-show_streams", "-show_format", str(path))
    )


def keyframe_times(path: Path) -> list[float]:
    """When the video's keyframes are shown, in seconds."""
    listed = run_ffprobe(
        "-select_streams", "v:0", "-skip_frame", "nokey",
        "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(path),
    )  # fmt: skip
    return [float(line.split(",")[0]) for line in listed.decode().split()]


def frame_rgb(path: Path, t: float, x: int, y: int) -> tuple[int, int, int]:
    """The colour of pixel (x, y) of the frame shown at `t` seconds."""
    completed = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-nostdin",
            "-ss",
            f"{t:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            # RGB before cropping: in yuv420p a 1x1 crop rounds down to 0x0 (chroma is 2x2).
            f"format=rgb24,crop=1:1:{x}:{y}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    red, green, blue = completed.stdout[:3]
    return red, green, blue
