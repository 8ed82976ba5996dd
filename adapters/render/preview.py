"""A preview's files: its storyboard stills and its proxy, both watermarked.

The proxy is the whole movie in the preview look (look.py: at most 512 px, 12 to 15
fps) with its sound, encoded for speed rather than size: x264 `ultrafast`, CRF 30, AAC
64 kb/s, a keyframe every 2 s (so a player seeks quickly), `+faststart`. A large
translucent "PREVIEW" across its middle keeps it from standing in for the render. The
storyboard's stills (stills.py) are drawn at the same size and carry a small "PREVIEW"
in a corner, so what the frame shows stays readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ffmpeg

from phantomflow.adapters.render.graph import AUDIO_RATE, EncoderSettings, GraphBuilder, Stream
from phantomflow.adapters.render.process import COMMON_ARGS

PROXY_ENCODER = EncoderSettings(preset="ultrafast", crf=30, audio_bitrate="64k")
KEYFRAME_SECONDS = 2
WATERMARK_TEXT = "PREVIEW"
# Sizes as a share of the frame's height: across the proxy, in a storyboard's corner.
LARGE_WATERMARK = 1 / 5
SMALL_WATERMARK = 1 / 14


def watermark(picture: Stream, font: Path, height: int, large: bool) -> Stream:
    """`picture` with "PREVIEW" drawn over it: white with a dark outline, both half
    transparent, so it shows on any picture and the picture shows through it."""
    size = max(8, round(height * (LARGE_WATERMARK if large else SMALL_WATERMARK)))
    margin = max(2, size // 3)
    x, y = (
        ("(w-text_w)/2", "(h-text_h)/2") if large else (f"w-text_w-{margin}", f"h-text_h-{margin}")
    )
    return picture.filter(
        "drawtext",
        fontfile=str(font),
        text=WATERMARK_TEXT,
        expansion="none",
        fontsize=size,
        fontcolor="white@0.5",
        borderw=max(1, size // 16),
        bordercolor="black@0.5",
        x=x,
        y=y,
    )


def proxy_command(builder: GraphBuilder, font: Path, output_path: Path) -> Any:
    """The one FFmpeg run of the proxy: the movie in `builder`'s look, watermarked."""
    video, sound = builder.streams()
    look = builder.frame
    picture = watermark(video, font, look.height, large=True).filter("format", "yuv420p")
    movie = ffmpeg.output(
        picture,
        sound,
        f"file:{output_path}",
        f="mp4",
        vcodec="libx264",
        preset=PROXY_ENCODER.preset,
        crf=PROXY_ENCODER.crf,
        pix_fmt="yuv420p",
        g=max(1, round(look.fps * KEYFRAME_SECONDS)),
        acodec="aac",
        audio_bitrate=PROXY_ENCODER.audio_bitrate,
        ar=AUDIO_RATE,
        ac=2,
        movflags="+faststart",
    )
    return movie.global_args(*COMMON_ARGS).overwrite_output()


def still_command(picture: Stream, font: Path, height: int, output_path: Path) -> Any:
    """The run that writes one storyboard still as a JPEG, watermarked in a corner."""
    return (
        watermark(picture, font, height, large=False)
        .output(
            f"file:{output_path}",
            f="image2",
            update=1,
            vcodec="mjpeg",
            **{"frames:v": 1, "q:v": 4},
        )
        .global_args(*COMMON_ARGS)
        .overwrite_output()
    )
