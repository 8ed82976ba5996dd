"""A preview's files: its storyboard stills and its proxy, both watermarked.

The proxy is the whole movie in the preview look (look.py: at most 512 px, 12 to 15
fps) with its sound, encoded for speed rather than size: x264 `ultrafast`, CRF 30, AAC
48 kb/s at 24 kHz, a keyframe every 2 s (so a player seeks quickly), `+faststart`. A large
translucent "PREVIEW" across its middle keeps it from standing in for the render.

The storyboard's stills (stills.py) are drawn at the same size on the render's own
frame grid, and carry a small "PREVIEW" in a corner, so what they show stays readable.

Decoding the client's videos is most of a preview's cost, so both decode them with
shortcuts (PREVIEW_DECODING): no deblocking (invisible at this size) and none of the
frames no other frame refers to (about a third of them, in a video with B-frames). So
motion inside a video may step a little in the proxy, and a still may show a video's
frame one or two frames before the instant (a render decodes every frame exactly).

`PreviewDrawing.draw` first decodes each video the stills show once, for all of them
(sampling.py), while the stills without a video are drawn; then the others, each as
soon as the frames it shows are decoded, so most are drawn during the decoding. It
draws the stills two at a time, and begins the proxy once the stills without a video
have all begun and the videos are decoded (the proxy reads their copies): only stills
of the videos' last frames remain then. The proxy runs at a lower CPU priority than
the stills (process.py), so it takes from them only what they leave. (Begun with the
first still, the proxy finished sooner but the storyboard of six scenes took twice as
long; docs/performance.md.) The storyboard is handed over the moment its stills are
drawn; the proxy's progress is reported from then on, and the proxy is answered only
after the storyboard (so it is always recorded second).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ffmpeg
from PIL import Image, ImageDraw, ImageFont

from phantomflow.adapters.render.graph import EncoderSettings, GraphBuilder, Stream
from phantomflow.adapters.render.look import preview_look
from phantomflow.adapters.render.probe import MEDIA_FORMATS, MediaInfo, measure_duration
from phantomflow.adapters.render.process import (
    COMMON_ARGS,
    PREVIEW_ARGS,
    PROXY_NICENESS,
    Deadline,
    run_checked,
)
from phantomflow.adapters.render.progress import FRAMES_END, ProgressReporter, frame_progress
from phantomflow.adapters.render.sampling import (
    COPY_SLACK_SECONDS,
    Decoding,
    copy_fits,
    decode_once,
    image_files,
)
from phantomflow.adapters.render.stills import StillBuilder
from phantomflow.domain.previews import Moment, storyboard_moments
from phantomflow.domain.script import MovieScript

PROXY_ENCODER = EncoderSettings(preset="ultrafast", crf=30, audio_bitrate="48k")
# The proxy's sound at half a render's rate (up to 12 kHz, plenty for a preview): AAC
# costs half as much, a tenth of the proxy's time on the six-scene script of
# bench/preview.py (0.51 -> 0.44 s for its run alone).
PROXY_AUDIO_RATE = 24000
PROXY_ENCODER_THREADS = 2
# Decoder options of every media input (`:v`: video streams only).
PREVIEW_DECODING = {"skip_loop_filter:v": "all", "skip_frame:v": "noref"}
# Storyboard stills drawn at once (each is one short FFmpeg run), beside the proxy's.
STILL_CONCURRENCY = 2
# A preview's progress: its storyboard is drawn up to here, then its proxy's frames.
STORYBOARD_END = 0.2
KEYFRAME_SECONDS = 2
WATERMARK_TEXT = "PREVIEW"
# Sizes as a share of the frame's height: across the proxy, in a storyboard's corner.
LARGE_WATERMARK = 1 / 5
SMALL_WATERMARK = 1 / 14


def watermark_size(height: int, large: bool) -> tuple[int, int]:
    """(font size, outline width) of "PREVIEW" on a picture `height` pixels high."""
    size = max(8, round(height * (LARGE_WATERMARK if large else SMALL_WATERMARK)))
    return size, max(1, size // 16)


def watermark(picture: Stream, font: Path, height: int) -> Stream:
    """`picture` (a still) with a small "PREVIEW" drawn in its corner: white with a dark
    outline, both half transparent, so it shows on any picture and the picture shows
    through it."""
    size, outline = watermark_size(height, large=False)
    margin = max(2, size // 3)
    return picture.filter(
        "drawtext",
        fontfile=str(font),
        text=WATERMARK_TEXT,
        expansion="none",
        fontsize=size,
        fontcolor="white@0.5",
        borderw=outline,
        bordercolor="black@0.5",
        x=f"w-text_w-{margin}",
        y=f"h-text_h-{margin}",
    )


def watermark_image(font: Path, height: int, path: Path) -> Path:
    """The proxy's large "PREVIEW", as `watermark` draws it, once: an RGBA PNG of the
    size of its outline, drawn by FreeType through Pillow.

    Overlaid on every frame of the proxy rather than drawn on each by drawtext: the
    outline made drawtext a quarter of the six-scene proxy's CPU (0.38 of 1.66 s); the
    overlay of the image costs a tenth of that (docs/performance.md)."""
    size, outline = watermark_size(height, large=True)
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = face.getbbox(WATERMARK_TEXT, stroke_width=outline)
    image = Image.new("RGBA", (right - left, bottom - top), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        (-left, -top),
        WATERMARK_TEXT,
        font=face,
        fill=(255, 255, 255, 128),
        stroke_width=outline,
        stroke_fill=(0, 0, 0, 128),
    )
    image.save(path)
    return path


def proxy_command(builder: GraphBuilder, font: Path, output_path: Path) -> Any:
    """The one FFmpeg run of the proxy: the movie in `builder`'s look, watermarked."""
    video, sound = builder.streams()
    look = builder.frame
    mark_path = watermark_image(font, look.height, builder.work_dir / "watermark.png")
    mark = (
        ffmpeg.input(f"file:{mark_path}", protocol_whitelist="file", format_whitelist=MEDIA_FORMATS)
        .video.filter("format", look.layer_format)
        .filter("loop", loop=-1, size=1, start=0)
    )
    # yuv420p (what it is encoded in) before the watermark: a preview composes in it
    # already (look.py), and blending into it is cheapest.
    picture = ffmpeg.filter(
        [video.filter("format", "yuv420p"), mark],
        "overlay",
        x="(W-w)/2",
        y="(H-h)/2",
        shortest=1,
        format=look.overlay_format,
    )
    movie = ffmpeg.output(
        picture,
        sound,
        f"file:{output_path}",
        f="mp4",
        vcodec="libx264",
        # Two of x264's threads are enough for frames this small (its default, 1.5 per
        # core, cost more CPU for no time saved on the bench's 2 cores).
        **{"threads:v": PROXY_ENCODER_THREADS},
        preset=PROXY_ENCODER.preset,
        crf=PROXY_ENCODER.crf,
        pix_fmt="yuv420p",
        g=max(1, round(look.fps * KEYFRAME_SECONDS)),
        acodec="aac",
        audio_bitrate=PROXY_ENCODER.audio_bitrate,
        ar=PROXY_AUDIO_RATE,
        ac=2,
        movflags="+faststart",
    )
    return movie.global_args(*COMMON_ARGS, *PREVIEW_ARGS).overwrite_output()


def still_command(picture: Stream, font: Path, height: int, output_path: Path) -> Any:
    """The run that writes one storyboard still as a JPEG, watermarked in a corner."""
    return (
        watermark(picture, font, height)
        .output(
            f"file:{output_path}",
            f="image2",
            update=1,
            vcodec="mjpeg",
            # One small frame: a thread of its own would only cost.
            **{"frames:v": 1, "q:v": 4, "threads:v": 1},
        )
        .global_args(*COMMON_ARGS, *PREVIEW_ARGS)
        .overwrite_output()
    )


@dataclass(frozen=True)
class Still:
    """One storyboard frame, drawn."""

    moment: Moment
    path: Path


@dataclass(frozen=True)
class ProxyResult:
    path: Path
    duration_seconds: float  # read from the file
    width: int
    height: int
    fps: float
    file_size_bytes: int


# Told the storyboard as soon as it is drawn.
StoryboardCallback = Callable[[list[Still]], None]


class StopProxy(Exception):
    """The storyboard failed or was refused: the proxy's FFmpeg is stopped."""


@dataclass
class PreviewDrawing:
    """One preview's FFmpeg runs, on media already downloaded and probed."""

    ffmpeg_exe: str
    script: MovieScript
    fonts: dict[tuple[str, str], Path]
    watermark_font: Path
    media: dict[str, MediaInfo]
    work_dir: Path
    output_dir: Path
    deadline: Deadline
    stall_seconds: float

    def __post_init__(self) -> None:
        self.look = preview_look(self.script)

    def draw(
        self, progress: ProgressReporter, start: float, on_storyboard: StoryboardCallback
    ) -> ProxyResult:
        progress.start_stage("storyboard", start)
        moments = storyboard_moments(self.script)
        storyboard_out = threading.Event()
        stop = threading.Event()
        begun = itertools.count(1)
        # The video frames each still shows, and each video's frames over all stills.
        shows = [self._builder(number).moment_instants(moment) for number, moment in
                 enumerate(moments)]  # fmt: skip
        wanted: dict[str, set[float]] = defaultdict(set)
        for instants in shows:
            for url, at in instants:
                wanted[url].add(at)
        # Copied for the proxy: the videos it shows no further than the stills do.
        shown = self._proxy_builder(self.work_dir / "proxy-plan").shown_until()
        copies = {
            url: until
            for url, until in shown.items()
            if url in wanted
            and until <= max(wanted[url]) + COPY_SLACK_SECONDS
            and copy_fits(self.look, until)
        }

        # The stills without a video come first (see `order`), then those of videos, in
        # the order their frames are decoded; once the plain ones have all begun and the
        # videos are decoded, only stills of the last frames remain: the proxy begins.
        plain = sum(1 for instants in shows if not instants)
        plain_begun = threading.Event()
        if plain == 0:
            plain_begun.set()

        def still(number: int) -> Still:
            count = next(begun)
            if count >= plain:
                plain_begun.set()
            samples: dict[tuple[str, float], Path] = {}
            for url, at in shows[number]:
                sample = decodings[url].image(at)
                if sample is not None:
                    samples[(url, at)] = sample
            return self._still(number, moments[number], samples)

        def proxy() -> ProxyResult:
            plain_begun.wait()
            concurrent.futures.wait([decoding.run for decoding in decodings.values()])
            if stop.is_set():
                raise StopProxy
            pictures = {url: decodings[url].copy() for url in copies}
            return self._proxy(on_out_time, {u: c for u, c in pictures.items() if c})

        # The proxy's progress is reported once the storyboard is out (in its thread only).
        reporting: list[Callable[[float], None]] = []

        def on_out_time(seconds: float) -> None:
            if stop.is_set():
                raise StopProxy
            if storyboard_out.is_set():
                if not reporting:
                    reporting.append(frame_progress(progress, self.script, STORYBOARD_END))
                reporting[0](seconds)

        with (
            concurrent.futures.ThreadPoolExecutor(max(1, len(wanted))) as sampling,
            concurrent.futures.ThreadPoolExecutor(1 + STILL_CONCURRENCY) as pool,
        ):
            decodings = {
                url: self._decoding(sampling, url, number, instants, copies.get(url))
                for number, (url, instants) in enumerate(wanted.items())
            }
            drawn = pool.submit(proxy)
            try:
                # The stills without a video first: they need not wait for the decoding;
                # then by the last instant into a video each shows.
                order = sorted(
                    range(len(moments)),
                    key=lambda n: (bool(shows[n]), max((at for _, at in shows[n]), default=0.0)),
                )
                by_number = dict(zip(order, pool.map(still, order), strict=True))
                stills = [by_number[number] for number in range(len(moments))]
                on_storyboard(stills)
            except BaseException:
                stop.set()
                plain_begun.set()
                raise
            storyboard_out.set()
            result = drawn.result()
        progress.start_stage("encoding", FRAMES_END)
        return result

    def _builder(self, number: int, samples: dict[tuple[str, float], Path] | None = None,
                 ) -> StillBuilder:  # fmt: skip
        folder = self.work_dir / f"still-{number:02d}"
        folder.mkdir(exist_ok=True)
        # On the render's own frame grid (the script's fps), at the preview's size.
        look = replace(self.look, fps=self.script.fps)
        return StillBuilder(
            self.script, self.fonts, self.media, folder, look, PREVIEW_DECODING,
            samples=samples or {},
        )  # fmt: skip

    def _decoding(
        self,
        pool: concurrent.futures.Executor,
        url: str,
        number: int,
        instants: set[float],
        copy_until: float | None,
    ) -> Decoding:
        folder = self.work_dir / f"video-{number:02d}"
        files = image_files(folder, instants)
        run = pool.submit(
            decode_once, self.ffmpeg_exe, self.media[url], files, self.look, PREVIEW_DECODING,
            folder, self.deadline, copy_until,
        )  # fmt: skip
        return Decoding(files, run)

    def _proxy_builder(
        self, folder: Path, pictures: dict[str, MediaInfo] | None = None
    ) -> ProxyBuilder:
        folder.mkdir(exist_ok=True)
        return ProxyBuilder(
            self.script, self.fonts, self.media, folder, self.look, PREVIEW_DECODING,
            pictures=pictures or {},
        )  # fmt: skip

    def _still(self, number: int, moment: Moment, samples: dict[tuple[str, float], Path]) -> Still:
        builder = self._builder(number, samples)
        look = builder.frame
        folder = builder.work_dir
        path = self.output_dir / f"storyboard-{number + 1:02d}.jpg"
        command = still_command(builder.moment(moment), self.watermark_font, look.height, path)
        run_checked(command.compile(cmd=self.ffmpeg_exe), self.deadline, _ignore, folder)
        return Still(moment, path)

    def _proxy(
        self, on_out_time: Callable[[float], None], pictures: dict[str, MediaInfo]
    ) -> ProxyResult:
        folder = self.work_dir / "proxy"
        path = self.output_dir / "proxy.mp4"
        builder = self._proxy_builder(folder, pictures)
        command = proxy_command(builder, self.watermark_font, path).compile(cmd=self.ffmpeg_exe)
        run_checked(command, self.deadline, on_out_time, folder, self.stall_seconds, PROXY_NICENESS)
        return ProxyResult(
            path=path,
            duration_seconds=measure_duration(path),
            width=self.look.width,
            height=self.look.height,
            fps=self.look.fps,
            file_size_bytes=path.stat().st_size,
        )


@dataclass
class ProxyBuilder(GraphBuilder):
    """The proxy's graph, which also tells how far into each video it shows."""

    _shown: dict[str, float] = field(default_factory=dict)

    def shown_until(self) -> dict[str, float]:
        """Seconds into each video file up to which the proxy shows its picture (all of
        a looped clip; a video whose length is unknown, forever)."""
        self.streams()
        return dict(self._shown)

    def _video(
        self, url: str, trim: tuple[float, float | None], loop: bool, skip: float, length: float
    ) -> Stream | None:
        trim_start, trim_end = trim
        clip_end = trim_end if trim_end is not None else self.media[url].duration
        shown_end = trim_start + skip + length
        if clip_end is None:
            until = math.inf if loop else shown_end
        elif loop and shown_end > clip_end:
            until = clip_end  # it loops: all of the clip
        else:
            until = min(clip_end, shown_end)
        self._shown[url] = max(self._shown.get(url, 0.0), until)
        return super()._video(url, trim, loop, skip, length)


def _ignore(_done: float) -> None:
    """The progress of a run too short to report."""
