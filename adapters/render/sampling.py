"""Decoding each video of a storyboard once, for all its stills.

A still shows a video at one instant. Opened there by an input seek, FFmpeg decodes from
the keyframe before that instant, so every still of a video decodes it again, up to a
whole keyframe interval of it: the six-scene script of bench/preview.py asked for 16 s
of decoding of its 1080p clip (keyframes 8 s apart) to show six frames of its first 5 s,
and those stills were most of the storyboard's time (docs/performance.md).

So each video is decoded once, from its start to the last instant any still shows of
it, by one FFmpeg run with an output per instant: the first frame at or after it (what
the seek gave), scaled to cover the preview's frame, written as a BMP image (no
compression to spend time on). Each image is written under a temporary name and
renamed when complete, and its output ends with its one frame, so a still can draw it
as soon as it appears (`Decoding.image`), while the run goes on decoding: the stills
of a video's first instants are drawn during its decoding, not after it. An instant
past the video's last frame gets no image, and its still seeks the video itself.

The proxy decodes the same videos again, once per use (the six-scene script shows its
clip twice), scaling 1080p frames down each time. So when the proxy shows no more of a
video than the stills do (give or take COPY_SLACK_SECONDS), the same run also writes a
small copy of it: at the preview's size and rate, uncompressed (yuv420p, what the
proxy composes in), so neither run spends anything on a codec: as MJPEG, the copy cost
the decoding run a fifth more time, and the proxy its decoding and a range conversion.
The proxy reads its picture from the copy (its sound still from the source). A video
the proxy shows much further than the stills is not copied, so the storyboard never
waits for decoding only the proxy needs; nor is one whose copy would be larger than
COPY_MAX_BYTES (over a minute of a 512×288 picture): the proxy decodes it itself.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from phantomflow.adapters.render.failure import RenderFailed
from phantomflow.adapters.render.look import Look
from phantomflow.adapters.render.probe import MEDIA_FORMATS, MediaInfo
from phantomflow.adapters.render.process import COMMON_ARGS, Deadline, run_checked

log = logging.getLogger(__name__)

# Decoded past the last instant: with non-reference frames skipped (a preview's
# decoding shortcuts) the first frame kept after an instant can be a few frames later.
TAIL_SECONDS = 0.5
# The small copy: the preview's size and rate, uncompressed, in Matroska.
COPY_NAME = "copy.mkv"
COPY_PIXEL_FORMAT = "yuv420p"
COPY_MAX_BYTES = 256 * 1024 * 1024
# How much further than its last still the proxy may show a video that is copied.
COPY_SLACK_SECONDS = 2.0
# Unlike a preview's other runs (process.PREVIEW_ARGS), this one filters the source's
# own frames (1080p in the benchmark), whose scaling is worth a second thread: the
# six-scene script's decoding run 0.60-0.66 -> 0.56 s.
DECODING_FILTER_THREADS = 2
# How often a still waiting for its image looks for it.
POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Decoded:
    """What one decoding of a video left: the image of each instant that has one, and
    the small copy of its picture, when one was asked for."""

    images: dict[float, Path]
    copy: MediaInfo | None


def image_files(folder: Path, instants: Iterable[float]) -> dict[float, Path]:
    """Where the decoding run writes the image of each instant."""
    return {at: folder / f"instant-{n:03d}.bmp" for n, at in enumerate(sorted(set(instants)), 1)}


def sample_command(
    ffmpeg_exe: str,
    info: MediaInfo,
    instants: Iterable[float],
    look: Look,
    decoding: dict[str, str],
    folder: Path,
    copy_until: float | None = None,
) -> list[str]:
    """The run that writes the frame of the video `info` at each of `instants` (seconds
    into the file, as an input seek counts them) into `folder` (`image_files`); and,
    with `copy_until`, the small copy of its first `copy_until` seconds (COPY_NAME)."""
    files = image_files(folder, instants)
    until = max(files) + TAIL_SECONDS
    if copy_until is not None:
        until = max(until, copy_until + TAIL_SECONDS)
    source = ffmpeg.input(
        f"file:{info.path}",
        protocol_whitelist="file",
        format_whitelist=MEDIA_FORMATS,
        t=f"{until:.6f}",
        **decoding,
    ).video
    branches = source.split()
    cover = {"force_original_aspect_ratio": "increase", "flags": "fast_bilinear"}
    outputs = [
        # The first frame at or after the instant: the one after a frame before it (or
        # the very first frame, for an instant at or before it).
        branches[n]
        .filter("select", f"gte(t,{at:.6f})*(isnan(prev_t)+lt(prev_t,{at:.6f}))")
        .filter("scale", look.width, look.height, **cover)
        .output(
            f"file:{path}",
            f="image2",
            update=1,
            atomic_writing=1,
            vcodec="bmp",
            **{"frames:v": 1},
        )
        for n, (at, path) in enumerate(files.items())
    ]
    if copy_until is not None:
        outputs.append(
            branches[len(files)]
            .filter("fps", fps=look.rate)
            .filter("scale", look.width, look.height, **cover)
            .output(
                f"file:{folder / COPY_NAME}",
                f="matroska",
                vcodec="rawvideo",
                pix_fmt=COPY_PIXEL_FORMAT,
                t=f"{copy_until:.6f}",
            )
        )
    command = (
        ffmpeg.merge_outputs(*outputs)
        .global_args(*COMMON_ARGS, "-filter_complex_threads", str(DECODING_FILTER_THREADS))
        .overwrite_output()
    )
    args: list[str] = command.compile(cmd=ffmpeg_exe)
    return args


def copy_fits(look: Look, seconds: float) -> bool:
    """Whether the small copy of `seconds` of a video fits in COPY_MAX_BYTES."""
    frame_bytes = look.width * look.height * 3 // 2  # yuv420p
    return math.ceil(seconds * look.fps) * frame_bytes <= COPY_MAX_BYTES


def decode_once(
    ffmpeg_exe: str,
    info: MediaInfo,
    instants: Iterable[float],
    look: Look,
    decoding: dict[str, str],
    folder: Path,
    deadline: Deadline,
    copy_until: float | None = None,
) -> Decoded:
    """Decode the video `info` once: the image of each instant (seconds into the file;
    an instant past the video's last frame has none, and its still seeks the video
    itself) and, with `copy_until`, the small copy of its picture up to there."""
    files = image_files(folder, instants)
    folder.mkdir(parents=True, exist_ok=True)
    command = sample_command(ffmpeg_exe, info, files, look, decoding, folder, copy_until)
    try:
        run_checked(command, deadline, _ignore, folder)
    except RenderFailed as failure:
        if deadline.remaining() <= 0:
            raise
        # Nothing is lost that the slower way cannot do: the stills without an image
        # seek the video, the proxy decodes it itself.
        log.warning("decoding %s once failed (%s); its stills seek it", info.path.name, failure)
        copy_until = None
    images = {at: path for at, path in files.items() if path.is_file()}
    copy = None
    if copy_until is not None and (folder / COPY_NAME).is_file():
        copy = MediaInfo(folder / COPY_NAME, has_video=True, has_audio=False,
                         duration=info.duration)  # fmt: skip
    return Decoded(images, copy)


class Decoding:
    """`decode_once` under way (`run`, a future of it): each instant's image as soon as
    the run has written it (`files`: `image_files`), the small copy once it has ended."""

    def __init__(self, files: dict[float, Path], run: concurrent.futures.Future[Decoded]) -> None:
        self.files = files
        self.run = run

    def image(self, at: float) -> Path | None:
        """The image of the instant `at` once written; None if the run ended without
        one (or `at` was not asked for)."""
        path = self.files.get(at)
        if path is None:
            return None
        while not path.is_file():
            if self.run.done():
                return path if path.is_file() else None
            time.sleep(POLL_SECONDS)
        return path

    def copy(self) -> MediaInfo | None:
        """The small copy, once the run has ended (raises what the run raised)."""
        return self.run.result().copy


def _ignore(_done: float) -> None:
    """The progress of a run too short to report."""
