"""Decoding each video of a storyboard once, for all its stills.

A still shows a video at one instant. Opened there by an input seek, FFmpeg decodes from
the keyframe before that instant, so every still of a video decodes it again, up to a
whole keyframe interval of it: the six-scene script of bench/preview.py asked for 16 s
of decoding of its 1080p clip (keyframes 8 s apart) to show six frames of its first 5 s,
and those stills were most of the storyboard's time (docs/performance.md).

So each video is decoded once, from its start to the last instant any still shows of
it, by one FFmpeg run that keeps only those frames: for each instant the first frame at
or after it (what the seek gave), scaled to cover the preview's frame, written as BMP
images (no compression to spend time on). The run lists the kept frames' times, so each
instant is matched to its image; the stills then draw the images like pictures
(stills.py). Two instants between the same two frames share one image.

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

import contextlib
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from phantomflow.adapters.render.failure import RenderFailed
from phantomflow.adapters.render.look import Look
from phantomflow.adapters.render.probe import MEDIA_FORMATS, MediaInfo
from phantomflow.adapters.render.process import COMMON_ARGS, PREVIEW_ARGS, Deadline, run_checked

log = logging.getLogger(__name__)

# Decoded past the last instant: with non-reference frames skipped (a preview's
# decoding shortcuts) the first frame kept after an instant can be a few frames later.
TAIL_SECONDS = 0.5
FRAMES_LISTING = "frames.txt"
# The small copy: the preview's size and rate, uncompressed, in Matroska.
COPY_NAME = "copy.mkv"
COPY_PIXEL_FORMAT = "yuv420p"
COPY_MAX_BYTES = 256 * 1024 * 1024
# How much further than its last still the proxy may show a video that is copied.
COPY_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class Decoded:
    """What one decoding of a video left: the image of each instant asked for, and the
    small copy of its picture, when one was asked for."""

    images: dict[float, Path]
    copy: MediaInfo | None


def sample_command(
    ffmpeg_exe: str,
    info: MediaInfo,
    instants: Iterable[float],
    look: Look,
    decoding: dict[str, str],
    folder: Path,
    copy_until: float | None = None,
) -> list[str]:
    """The run that writes the frames of the video `info` at `instants` (seconds into
    the file, as an input seek counts them) into `folder`, and lists their times; and,
    with `copy_until`, the small copy of its first `copy_until` seconds (COPY_NAME)."""
    times = sorted(set(instants))
    until = times[-1] + TAIL_SECONDS
    if copy_until is not None:
        until = max(until, copy_until + TAIL_SECONDS)
    source = ffmpeg.input(
        f"file:{info.path}",
        protocol_whitelist="file",
        format_whitelist=MEDIA_FORMATS,
        t=f"{until:.6f}",
        **decoding,
    ).video
    cover = {"force_original_aspect_ratio": "increase", "flags": "fast_bilinear"}
    if copy_until is not None:
        split = source.split()
        source, copied = split[0], split[1]
    # A frame is kept when an instant falls after the frame before it and at or
    # before it (the first frame is kept for an instant at or before it).
    kept = "+".join(f"gte(t,{at:.6f})*(isnan(prev_t)+lt(prev_t,{at:.6f}))" for at in times)
    frames = (
        source.filter("select", kept)
        # `print` lists only frames that carry metadata: each kept frame is given some.
        .filter("metadata", mode="add", key="phantomflow.kept", value="1")
        .filter("metadata", mode="print", file=str(folder / FRAMES_LISTING))
        .filter("scale", look.width, look.height, **cover)
        .output(f"file:{folder}/frame-%03d.bmp", f="image2", vcodec="bmp", fps_mode="passthrough")
    )
    outputs = [frames]
    if copy_until is not None:
        outputs.append(
            copied.filter("fps", fps=look.rate)
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
        ffmpeg.merge_outputs(*outputs).global_args(*COMMON_ARGS, *PREVIEW_ARGS).overwrite_output()
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
    wanted = sorted(set(instants))
    folder.mkdir(parents=True, exist_ok=True)
    command = sample_command(ffmpeg_exe, info, wanted, look, decoding, folder, copy_until)
    try:
        run_checked(command, deadline, _ignore, folder)
    except RenderFailed as failure:
        if deadline.remaining() <= 0:
            raise
        # Say every instant fell past the video's last frame (a container longer than its
        # picture): FFmpeg refuses an output that got no frame. Nothing is lost that the
        # slower way cannot do: the stills seek the video, the proxy decodes it itself.
        log.warning("decoding %s once failed (%s); its stills seek it", info.path.name, failure)
        copy_until = None
    kept = kept_times(folder / FRAMES_LISTING)
    images: dict[float, Path] = {}
    for at in wanted:
        index = next((i for i, time in enumerate(kept) if time >= at - 1e-6), None)
        if index is not None:
            image = folder / f"frame-{index + 1:03d}.bmp"
            if image.is_file():
                images[at] = image
    copy = None
    if copy_until is not None and (folder / COPY_NAME).is_file():
        copy = MediaInfo(folder / COPY_NAME, has_video=True, has_audio=False,
                         duration=info.duration)  # fmt: skip
    return Decoded(images, copy)


def kept_times(listing: Path) -> list[float]:
    """The times of the frames the run kept, in order, from the metadata filter's listing
    (`frame:0    pts:4096    pts_time:0.266667`, then the frame's metadata lines)."""
    if not listing.is_file():
        return []
    times = []
    for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("frame:"):
            time = math.nan  # a frame without a time is kept in the count, matched to nothing
            for field in line.split():
                if field.startswith("pts_time:"):
                    with contextlib.suppress(ValueError):
                        time = float(field.removeprefix("pts_time:"))
            times.append(time)
    return times


def _ignore(_done: float) -> None:
    """The progress of a run too short to report."""
