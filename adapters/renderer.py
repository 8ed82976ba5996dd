"""Rendering a movie script to an MP4 with FFmpeg: one filter graph, one run.

Graphs are built with ffmpeg-python and run with the FFmpeg binary shipped in the
`imageio-ffmpeg` wheel. A render is:

1. `downloading`: every media `src` is fetched by our own code (adapters/media.py:
   http(s) only, public addresses only, size cap, time limit, Content-Type check)
   into the work directory, and each file is opened once by FFmpeg to check it is
   media of the kind the script uses it as (and whether it has sound).
2. One FFmpeg run of one filter graph built from the whole script: each scene is a
   `color` canvas with its media background, images and videos overlaid (scaled by
   their fit, faded, made translucent) and text drawn; scenes are joined by `xfade`
   (transitions, which overlap the two scenes) or `concat`; every sound (audio
   elements, the sound of video elements, the soundtrack) is trimmed, faded, delayed
   to its place and mixed. Its progress, by output time, is reported as
   `rendering_scene_N` (and `stitching` while a transition is being drawn).
3. `encoding`: the file is finished. Its duration is read from the MP4 header (the
   video track's, adapters/mp4.py; no second decoding pass) and the JPEG poster is
   one frame decoded from it.

Output: H.264 (libx264) yuv420p + AAC stereo 48 kHz, MP4 with `+faststart` so
players can start before the whole file has arrived. A script without any sound
still gets a silent AAC track, so every output has the same shape.

Quality maps to encoder settings (lower CRF is better and bigger; slower presets
compress better for the same CRF):

    =========  =========  ====  ==========
    quality    preset     CRF   AAC bitrate
    =========  =========  ====  ==========
    low        veryfast   28    96 kb/s
    medium     fast       23    128 kb/s
    high       medium     19    192 kb/s
    =========  =========  ====  ==========

Text is always drawn literally: each element's text (wrapped to its width with the
same font, by Pillow's FreeType) goes into a file of its own and `drawtext` reads it
with `textfile=` and `expansion=none`, so quotes, colons, backslashes and `%{...}`
never reach FFmpeg's option or expansion parsers. Every other value in the graph is
a number, a validated colour or an enum; ffmpeg-python escapes every argument.

FFmpeg only ever opens files we created: inputs are `file:` URLs of absolute paths
in the work directory, opened with `-protocol_whitelist file` and, for downloaded
media, `-format_whitelist` of plain media containers (so a "video" that is really
an HLS playlist or a concat script pointing at other files is refused).

Failures raise RenderFailed carrying one line of FFmpeg's stderr: the cause, which
FFmpeg logs first, not the generic propagation lines it prints after it (see
`meaningful_error_line`). A font that is missing or not a font fails the render up
front: with fontconfig in this FFmpeg build, drawtext would otherwise quietly
substitute whatever system font fontconfig finds.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import math
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ffmpeg
import imageio_ffmpeg
from ffmpeg import nodes as ffmpeg_nodes
from PIL import ImageFont

from phantomflow.adapters.media import FetchedMedia, FetchLimits, MediaFetcher, MediaFetchFailed
from phantomflow.adapters.mp4 import Mp4HeaderError, video_duration
from phantomflow.adapters.settings import Settings
from phantomflow.domain.script import (
    AudioElement,
    ImageElement,
    MediaBackground,
    MovieScript,
    Position,
    Quality,
    Scene,
    TextElement,
    VideoElement,
)

log = logging.getLogger(__name__)

# FFmpeg 9's threaded scheduler can deadlock on some multi-input graphs (seen here about
# one run in six on a graph of overlays, text and a transition, at random, with no error).
# Making colours and silence inside the graph instead of as lavfi inputs (see _Source)
# took one such graph from 7 hangs in 150 runs to none in 450; the watchdog stays for
# whatever else may still hang. A deadlocked FFmpeg still prints its progress block
# every -stats_period, the same block each time: a run whose progress (output time,
# frames, bytes written) has not moved for STALL_SECONDS is killed and run again, up
# to STALL_RETRIES times, so a stuck FFmpeg never holds a worker until the render
# deadline.
STALL_SECONDS = 20.0
STALL_RETRIES = 3

FONTS_DIR = Path(__file__).parent / "fonts"
DEFAULT_FONT = FONTS_DIR / "DejaVuSans.ttf"
FONT_FILES: dict[tuple[str, str], str] = {
    ("DejaVu Sans", "normal"): "DejaVuSans.ttf",
    ("DejaVu Sans", "bold"): "DejaVuSans-Bold.ttf",
    ("DejaVu Serif", "normal"): "DejaVuSerif.ttf",
    ("DejaVu Serif", "bold"): "DejaVuSerif-Bold.ttf",
    ("DejaVu Sans Mono", "normal"): "DejaVuSansMono.ttf",
    ("DejaVu Sans Mono", "bold"): "DejaVuSansMono-Bold.ttf",
}

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class EncoderSettings:
    preset: str
    crf: int
    audio_bitrate: str


QUALITY_SETTINGS: dict[Quality, EncoderSettings] = {
    "low": EncoderSettings(preset="veryfast", crf=28, audio_bitrate="96k"),
    "medium": EncoderSettings(preset="fast", crf=23, audio_bitrate="128k"),
    "high": EncoderSettings(preset="medium", crf=19, audio_bitrate="192k"),
}

AUDIO_RATE = 48000

# Overall progress: downloading ends at DOWNLOAD_END (when there is anything to
# download) and the frames at FRAMES_END, where `encoding` (the file finished, its
# poster taken) stays. Never 1.0: completion is the caller's to report.
DOWNLOAD_END = 0.10
FRAMES_END = 0.95

# Each report becomes an event in the job's history, so reports are rationed: a new
# report needs both this much time and this much progress since the previous one.
REPORT_INTERVAL_SECONDS = 0.25
REPORT_STEP = 0.02

# Text elements are at least this far from the frame's edges, as a share of its height.
MARGIN_SHARE = 0.05

PROBE_TIMEOUT_SECONDS = 30.0
PROBE_CONCURRENCY = 4

# The poster frame is taken this far into the movie (or at its middle, if shorter).
POSTER_AT_SECONDS = 1.0


def poster_time(duration: float) -> float:
    """When the poster frame is taken. The encoder puts a keyframe there, so taking
    the poster decodes one frame instead of the GOP before it (0.21 -> 0.10 s at 1080p,
    for a file about 1 % bigger)."""
    return min(POSTER_AT_SECONDS, duration / 2)


STDERR_HEAD_LINES = 50
STDERR_TAIL_LINES = 150
STDERR_LINE_CHARS = 4096
ERROR_MESSAGE_CHARS = 300

# TrueType, OpenType (CFF) and TrueType collection signatures. Checked because this
# FFmpeg build has fontconfig: drawtext silently falls back to some system font when
# `fontfile` cannot be loaded, which would make output depend on the machine.
FONT_SIGNATURES = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"ttcf")

COLOUR_PATTERN = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")

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
class RenderResult:
    path: Path
    duration_seconds: float  # read from the real output file, not from the script
    file_size_bytes: int
    poster_path: Path | None = None  # a JPEG frame of the video, beside it


class RenderFailed(Exception):
    """A render FFmpeg could not do.

    `message` is FFmpeg's one meaningful error line (not the whole stderr), or what
    was wrong with a media source, suitable for an API user.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class MediaInfo:
    """A downloaded source as FFmpeg sees it."""

    path: Path
    has_video: bool
    has_audio: bool
    duration: float | None


class FFmpegRenderer:
    def __init__(
        self,
        ffmpeg_exe: str | None = None,
        font_path: Path | None = None,
        timeout_seconds: float = 3600,
        stall_seconds: float = STALL_SECONDS,
        fetcher: MediaFetcher | None = None,
    ) -> None:
        """`font_path` replaces every bundled font with one file (tests, custom builds)."""
        self.ffmpeg_exe = ffmpeg_exe or imageio_ffmpeg.get_ffmpeg_exe()
        self.font_path = font_path
        self.timeout_seconds = timeout_seconds
        self.stall_seconds = stall_seconds
        self.fetcher = fetcher or MediaFetcher()

    def render(
        self,
        script: MovieScript,
        output_path: Path,
        on_progress: ProgressCallback,
        work_dir: Path,
    ) -> RenderResult:
        """Render `script` to `output_path` (and a JPEG poster beside it).

        Intermediate files go in `work_dir`. Raises RenderFailed when a source cannot
        be fetched or is not media, when FFmpeg cannot render the script, or when the
        deadline passes. An exception from `on_progress` kills FFmpeg and propagates
        as is; OSError means the FFmpeg binary could not be started (a deployment fault).
        """
        deadline = _Deadline(self.timeout_seconds)
        progress = _ProgressReporter(on_progress)
        work_dir = work_dir.resolve()
        output_path = output_path.resolve()
        poster_path = output_path.with_suffix(".jpg")
        work_dir.mkdir(parents=True, exist_ok=True)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        fonts = {key: _checked_font(path) for key, path in self._fonts(script).items()}

        media = self._download(script, work_dir, progress, deadline)
        frames_start = DOWNLOAD_END if media else 0.0
        plan = GraphBuilder(script, fonts, media, work_dir).build(output_path)
        timeline = _Timeline(script)
        stage_at = timeline.stage_at
        progress.start_stage(stage_at(0.0), frames_start)

        def on_out_time(seconds: float) -> None:
            value = _between(frames_start, FRAMES_END, seconds / script.duration)
            stage = stage_at(seconds)
            if stage != progress.stage:
                progress.start_stage(stage, value)
            else:
                progress.advance(value)

        _run_checked(
            plan.compile(cmd=self.ffmpeg_exe), deadline, on_out_time, work_dir, self.stall_seconds
        )
        progress.start_stage("encoding", FRAMES_END)
        duration = measure_duration(output_path)
        # The poster: one frame decoded from the finished file, at the keyframe the
        # encoder put there (a second output of the main run could stall FFmpeg's
        # scheduler).
        poster_at = min(poster_time(script.duration), duration / 2)
        poster = (
            ffmpeg.input(f"file:{output_path}", ss=f"{poster_at:.6f}", protocol_whitelist="file")
            .video.output(
                f"file:{poster_path}",
                f="image2",
                update=1,
                vcodec="mjpeg",
                **{"frames:v": 1, "q:v": 3},
            )
            .global_args(*_COMMON_ARGS)
            .overwrite_output()
        )
        _run_checked(poster.compile(cmd=self.ffmpeg_exe), deadline, lambda _done: None, work_dir)
        return RenderResult(
            path=output_path,
            duration_seconds=duration,
            file_size_bytes=output_path.stat().st_size,
            poster_path=poster_path if poster_path.is_file() else None,
        )

    def _fonts(self, script: MovieScript) -> dict[tuple[str, str], Path]:
        used = {
            (element.font_family, element.font_weight)
            for scene in script.scenes
            for element in scene.elements
            if isinstance(element, TextElement)
        }
        if self.font_path is not None:
            return dict.fromkeys(used, self.font_path)
        return {key: FONTS_DIR / FONT_FILES[key] for key in used}

    def _download(
        self,
        script: MovieScript,
        work_dir: Path,
        progress: _ProgressReporter,
        deadline: _Deadline,
    ) -> dict[str, MediaInfo]:
        sources = script.media_sources()
        if not sources:
            return {}
        progress.start_stage("downloading", 0.0)
        try:
            fetched = self.fetcher.fetch_all(
                sources,
                work_dir / "media",
                lambda done, total: progress.advance(DOWNLOAD_END * 0.8 * done / total),
            )
        except MediaFetchFailed as failure:
            raise RenderFailed(failure.message) from None
        # Each file is opened once (named by its first use), all of them at once; what
        # is wrong is reported for the first source, in script order, that it concerns.
        first_use: dict[str, str] = {}
        for source in sources:
            first_use.setdefault(source.url, source.path)
        with concurrent.futures.ThreadPoolExecutor(min(len(first_use), PROBE_CONCURRENCY)) as pool:
            probes = {
                url: pool.submit(self._probe, fetched[url], where, deadline)
                for url, where in first_use.items()
            }
        media: dict[str, MediaInfo] = {}
        for source in sources:
            info = media[source.url] = probes[source.url].result()
            wanted = info.has_audio if source.kind == "audio" else info.has_video
            if not wanted:
                what = "sound" if source.kind == "audio" else "picture"
                raise RenderFailed(
                    f"{source.path}: the file has no {what} ({source.kind} expected)"
                )
        return media

    def _probe(self, fetched: FetchedMedia, where: str, deadline: _Deadline) -> MediaInfo:
        """Open the file once (no decoding) to learn its streams; refuse what is not media."""
        args = [
            self.ffmpeg_exe,
            "-hide_banner",
            "-nostdin",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            MEDIA_FORMATS,
            "-i",
            f"file:{fetched.path}",
        ]
        try:
            completed = subprocess.run(
                args,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=max(min(PROBE_TIMEOUT_SECONDS, deadline.remaining()), 0.1),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise RenderFailed(f"{where}: FFmpeg could not read the file in time") from None
        lines = completed.stderr.splitlines()
        kinds = {match.group(1) for line in lines if (match := _STREAM_LINE.match(line))}
        if not kinds:
            errors = [line for line in lines if "rror" in line or "Invalid" in line]
            reason = meaningful_error_line(errors, completed.returncode).replace(
                f"file:{fetched.path}", "the file"
            )
            raise RenderFailed(f"{where}: not a media file FFmpeg can read ({reason})")
        duration = None
        for line in lines:
            if match := _DURATION_LINE.search(line):
                hours, minutes, seconds = match.groups()
                duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
                break
        return MediaInfo(
            path=fetched.path,
            has_video="Video" in kinds,
            has_audio="Audio" in kinds,
            duration=duration,
        )


def measure_duration(path: Path) -> float:
    """The playing time of the first video stream of the MP4 `path`, in seconds.

    Read from the file's header (what ffprobe reports), not decoded: decoding a
    1080p render again cost about a tenth of its encoding."""
    try:
        return video_duration(path)
    except (Mp4HeaderError, OSError) as error:
        raise RenderFailed(f"could not measure the rendered video's duration ({error})") from None


class _Timeline:
    """Which stage the output time is in: a scene, or a transition between two."""

    def __init__(self, script: MovieScript) -> None:
        self.windows: list[tuple[float, float, str]] = []
        starts = script.scene_starts()
        for number, (scene, start) in enumerate(zip(script.scenes, starts, strict=True)):
            if scene.transition is not None:
                fade_from = start + scene.duration - scene.transition.duration
                self.windows.append((start, fade_from, f"rendering_scene_{number + 1}"))
                self.windows.append((fade_from, start + scene.duration, "stitching"))
            else:
                self.windows.append(
                    (start, start + scene.duration, f"rendering_scene_{number + 1}")
                )

    def stage_at(self, seconds: float) -> str:
        for _start, end, stage in self.windows:
            if seconds < end:
                return stage
        return self.windows[-1][2]


# ---------------------------------------------------------------- building the graph

# -nostdin: FFmpeg must never wait on or swallow our stdin. -progress pipe:1 gives
# machine-readable key=value progress on stdout; -loglevel error keeps stderr to the
# lines worth reporting.
_COMMON_ARGS = (
    "-hide_banner",
    "-nostdin",
    "-nostats",
    "-loglevel",
    "error",
    "-progress",
    "pipe:1",
    "-stats_period",
    str(REPORT_INTERVAL_SECONDS),
)

Stream = Any  # an ffmpeg-python stream (untyped library)


class _Source(ffmpeg_nodes.FilterNode):  # type: ignore[misc]  # untyped library
    """A filter that makes frames from nothing (`color`, `anullsrc`), inside the graph.

    ffmpeg-python offers such sources only as `-f lavfi` inputs, and FFmpeg 9 runs
    each input in a demuxer thread of its own: graphs with lavfi inputs deadlocked
    about one run in twenty (a graph of overlays, text, a transition and a sound: 7
    of 150 runs hung), and none did with the same sources inside the graph (0 of
    450). ffmpeg-python also merges nodes that look alike, so every source is made
    distinct: two scenes of one colour and length are two sources, not one.
    """

    _serials = itertools.count()

    def __init__(self, name: str, **kwargs: Any) -> None:
        # FilterNode insists on at least one input: call its base directly.
        ffmpeg_nodes.Node.__init__(
            self,
            stream_spec=None,
            name=name,
            incoming_stream_types={ffmpeg_nodes.FilterableStream},
            outgoing_stream_type=ffmpeg_nodes.FilterableStream,
            min_inputs=0,
            max_inputs=0,
            kwargs=kwargs,
        )
        self._serial = next(self._serials)

    def __hash__(self) -> int:
        return hash((super().__hash__(), self._serial))


def source(name: str, **kwargs: Any) -> Stream:
    """The output of a source filter `name` with these options, inside the graph."""
    return _Source(name, **kwargs).stream()


@dataclass
class GraphBuilder:
    """The one FFmpeg command for a script: inputs, the filter graph, two outputs."""

    script: MovieScript
    fonts: dict[tuple[str, str], Path]
    media: dict[str, MediaInfo]
    work_dir: Path
    sounds: list[Stream] = field(default_factory=list)
    _texts: int = 0
    _loops: int = 0
    _inputs: int = 0

    def build(self, output_path: Path) -> Any:
        script = self.script
        starts = script.scene_starts()
        video: Stream | None = None
        length = 0.0
        for number, scene in enumerate(script.scenes):
            picture = self._scene(number, scene, starts[number])
            if video is None:
                video = picture
            else:
                previous = script.scenes[number - 1].transition
                if previous is not None:
                    video = ffmpeg.filter(
                        [video, picture],
                        "xfade",
                        transition=previous.type,
                        duration=f"{previous.duration:.6f}",
                        offset=f"{length - previous.duration:.6f}",
                    )
                    length -= previous.duration
                else:
                    video = ffmpeg.concat(video, picture, v=1, a=0)
            length += scene.duration
        assert video is not None
        encoder = QUALITY_SETTINGS[script.quality]
        movie = ffmpeg.output(
            video.filter("format", "yuv420p"),
            self._soundtrack_mix(),
            f"file:{output_path}",
            f="mp4",
            vcodec="libx264",
            preset=encoder.preset,
            crf=encoder.crf,
            pix_fmt="yuv420p",
            acodec="aac",
            audio_bitrate=encoder.audio_bitrate,
            ar=AUDIO_RATE,
            ac=2,
            movflags="+faststart",
            force_key_frames=f"{poster_time(script.duration):.6f}",
        )
        return movie.global_args(*_COMMON_ARGS).overwrite_output()

    # -- scenes

    def _scene(self, number: int, scene: Scene, scene_start: float) -> Stream:
        script = self.script
        colour = ffmpeg_colour(scene.colour, keep_alpha=False)
        canvas = source(
            "color",
            c=colour,
            s=f"{script.width}x{script.height}",
            r=f"{script.fps:g}",
            d=f"{scene.duration:.6f}",
        )
        if isinstance(scene.background, MediaBackground):
            background = scene.background
            layer = self._picture(
                background.src,
                is_image=background.type == "image",
                box=(script.width, script.height),
                fit=background.fit,
                length=scene.duration,
                loop=background.loop,
                trim=(0.0, None),
            )
            canvas = self._overlay(canvas, layer, 0, 0, script.width, script.height, 0.0)
        margin = round(MARGIN_SHARE * script.height)
        for element in scene.elements:
            start, end = element.window(scene.duration)
            if end <= start:
                continue  # starts after its scene ends: never seen or heard
            if isinstance(element, TextElement):
                canvas = self._text(canvas, element, start, end, margin)
            elif isinstance(element, ImageElement | VideoElement):
                canvas = self._visual(canvas, element, start, end, scene_start)
            else:
                self._sound(element, start, end, scene_start, element.volume, loop=False)
        return canvas.filter("setsar", "1")

    def _text(
        self, canvas: Stream, element: TextElement, start: float, end: float, margin: int
    ) -> Stream:
        self._texts += 1
        font = self.fonts[(element.font_family, element.font_weight)]
        edge = max(margin, element.padding)
        room = self.script.width - 2 * edge
        width = min(element.max_width or room, room) if element.x is None else element.max_width
        text = wrap_text(element.text, font, element.font_size, width)
        text_file = self.work_dir / f"text_{self._texts:03d}.txt"
        # Bytes, not text mode: the text reaches drawtext exactly as wrapped here.
        text_file.write_bytes(text.encode("utf-8"))
        x, y = position_expressions(element.position, edge)
        options: dict[str, Any] = {
            "fontfile": str(font),
            "textfile": str(text_file),
            "expansion": "none",
            "fontcolor": ffmpeg_colour(element.color),
            "fontsize": element.font_size,
            "x": x if element.x is None else str(element.x),
            "y": y if element.y is None else str(element.y),
            "text_align": element.align[0].upper(),
            "alpha": fade_expression(start, end, element.fade_in, element.fade_out),
            "enable": f"between(t,{start:.6f},{end:.6f})",
        }
        if element.background_color is not None:
            options.update(
                box=1,
                boxcolor=ffmpeg_colour(element.background_color),
                boxborderw=element.padding,
            )
        # Keyword arguments only: ffmpeg-python escapes them correctly for both the option
        # and the filtergraph level (paths with spaces, colons or quotes stay intact).
        return canvas.filter("drawtext", **options)

    def _visual(
        self,
        canvas: Stream,
        element: ImageElement | VideoElement,
        start: float,
        end: float,
        scene_start: float,
    ) -> Stream:
        script = self.script
        box_w = element.width or script.width
        box_h = element.height or script.height
        is_video = isinstance(element, VideoElement)
        trim = (element.trim_start, element.trim_end) if is_video else (0.0, None)
        loop = element.loop if is_video else False
        layer = self._picture(
            element.src,
            is_image=not is_video,
            box=(box_w, box_h),
            fit=element.fit,
            length=end - start,
            loop=loop,
            trim=trim,
        )
        layer = layer.filter("format", "rgba")
        if element.opacity < 1:
            layer = layer.filter("colorchannelmixer", aa=f"{element.opacity:.4f}")
        if element.fade_in > 0:
            layer = layer.filter("fade", t="in", st=0, d=f"{element.fade_in:.6f}", alpha=1)
        if element.fade_out > 0:
            layer = layer.filter(
                "fade",
                t="out",
                st=f"{max(end - start - element.fade_out, 0):.6f}",
                d=f"{element.fade_out:.6f}",
                alpha=1,
            )
        if isinstance(element, VideoElement) and element.audible:
            self._sound(element, start, end, scene_start, element.volume, loop=element.loop)
        return self._overlay(canvas, layer, element.x, element.y, box_w, box_h, start)

    def _picture(
        self,
        url: str,
        is_image: bool,
        box: tuple[int, int],
        fit: str,
        length: float,
        loop: bool,
        trim: tuple[float, float | None],
    ) -> Stream:
        """A source's picture: `length` seconds at the script's fps, fitted into `box`."""
        fps = f"{self.script.fps:g}"
        if is_image:
            picture = self._input(url).video.filter("loop", loop=-1, size=1, start=0)
        else:
            picture = self._clip(url, trim, length, loop).video
        picture = picture.filter("fps", fps=fps).filter("trim", duration=f"{length:.6f}")
        width, height = box
        if fit == "fill":
            picture = picture.filter("scale", width, height)
        elif fit == "cover":
            picture = picture.filter(
                "scale", width, height, force_original_aspect_ratio="increase"
            ).filter("crop", width, height)
        else:
            picture = picture.filter("scale", width, height, force_original_aspect_ratio="decrease")
        return picture.filter("setsar", "1").filter("setpts", "PTS-STARTPTS")

    def _overlay(
        self, canvas: Stream, layer: Stream, x: int, y: int, box_w: int, box_h: int, start: float
    ) -> Stream:
        # Shift the layer to its start in the scene; before and after, the canvas shows
        # through (eof_action=pass). A `contain` fit is centred in its box.
        layer = layer.filter("setpts", f"PTS-STARTPTS+{start:.6f}/TB")
        return ffmpeg.filter(
            [canvas, layer],
            "overlay",
            x=f"{x}+({box_w}-overlay_w)/2",
            y=f"{y}+({box_h}-overlay_h)/2",
            eof_action="pass",
            format="auto",
        )

    # -- sound

    def _sound(
        self,
        element: VideoElement | AudioElement,
        start: float,
        end: float,
        scene_start: float,
        volume: float,
        loop: bool,
    ) -> None:
        length = end - start
        sound = self._clip(element.src, (element.trim_start, element.trim_end), length, loop)
        sound = self._shape_sound(sound.audio, length, volume, element.fade_in, element.fade_out)
        delay = round((scene_start + start) * 1000)
        self.sounds.append(sound.filter("adelay", delays=f"{delay}", all=1))

    def _shape_sound(
        self, sound: Stream, length: float, volume: float, fade_in: float, fade_out: float
    ) -> Stream:
        sound = sound.filter(
            "aformat", sample_fmts="fltp", sample_rates=AUDIO_RATE, channel_layouts="stereo"
        ).filter("atrim", duration=f"{length:.6f}")
        sound = sound.filter("asetpts", "PTS-STARTPTS")
        if volume != 1:
            sound = sound.filter("volume", f"{volume:.4f}")
        if fade_in > 0:
            sound = sound.filter("afade", t="in", st=0, d=f"{fade_in:.6f}")
        if fade_out > 0:
            sound = sound.filter(
                "afade", t="out", st=f"{max(length - fade_out, 0):.6f}", d=f"{fade_out:.6f}"
            )
        return sound

    def _soundtrack_mix(self) -> Stream:
        total = self.script.duration
        sounds = list(self.sounds)
        soundtrack = self.script.soundtrack
        if soundtrack is not None:
            sound = self._shape_sound(
                self._input(soundtrack.src).audio,
                total,
                soundtrack.volume,
                soundtrack.fade_in,
                soundtrack.fade_out,
            )
            sounds.append(sound)
        if not sounds:
            silence = {"r": AUDIO_RATE, "cl": "stereo", "d": f"{total:.6f}"}
            if self._inputs == 0:
                # ffmpeg-python cannot write a command without an input: with no media
                # at all, the silence is the one input (a lone demuxer; see _Source).
                options = ":".join(f"{key}={value}" for key, value in silence.items())
                return ffmpeg.input(f"anullsrc={options}", f="lavfi").audio
            return source("anullsrc", **silence)
        mixed = (
            sounds[0]
            if len(sounds) == 1
            else ffmpeg.filter(sounds, "amix", inputs=len(sounds), duration="longest", normalize=0)
        )
        return mixed.filter("apad").filter("atrim", duration=f"{total:.6f}")

    # -- inputs

    def _input(self, url: str, **options: Any) -> Stream:
        info = self.media[url]
        return ffmpeg.input(
            f"file:{info.path}",
            protocol_whitelist="file",
            format_whitelist=MEDIA_FORMATS,
            # ffmpeg-python merges identical nodes: a source used twice must be two
            # inputs, so each gets a queue size of its own. The queues must also be
            # large: with FFmpeg 9's threaded demuxers, queues of ~64 packets deadlocked
            # a graph of overlays and an xfade about one run in four (measured: 10 of
            # 40 hung at 64; 0 of 85 at 1024).
            thread_queue_size=self._next_input(),
            **options,
        )

    def _next_input(self) -> int:
        self._inputs += 1
        return INPUT_QUEUE_PACKETS + self._inputs

    def _clip(
        self, url: str, trim: tuple[float, float | None], length: float, loop: bool
    ) -> Stream:
        """A video or audio source from trim start to trim end, repeated if `loop`."""
        trim_start, trim_end = trim
        options: dict[str, Any] = {}
        if trim_start > 0:
            options["ss"] = f"{trim_start:.6f}"
        if trim_end is not None:
            options["t"] = f"{trim_end - trim_start:.6f}"
        if not loop:
            return self._input(url, **options)
        info = self.media[url]
        clip = (trim_end if trim_end is not None else info.duration or 0) - trim_start
        if clip <= 0:
            # Length unknown: repeat the whole file instead.
            return self._input(url, stream_loop=-1)
        # Repeating a trimmed clip: an ffconcat list naming our own file once per repeat.
        repeats = min(math.ceil(length / clip) + 1, 10_000)
        self._loops += 1
        entries = [
            f"file '{info.path.name}'\ninpoint {trim_start:.6f}\n"
            + (f"outpoint {trim_end:.6f}\n" if trim_end is not None else "")
        ] * repeats
        # Beside the media file, so the list names it by a bare name (`safe=1` accepts it).
        listing = info.path.parent / f"{info.path.name}.loop{self._loops}.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(entries), encoding="utf-8")
        return ffmpeg.input(
            f"file:{listing}",
            thread_queue_size=self._next_input(),
            f="concat",
            safe=1,
            protocol_whitelist="file",
            format_whitelist=f"concat,{MEDIA_FORMATS}",
        )


# Packets each input may queue ahead of the filter graph (see `_input`).
INPUT_QUEUE_PACKETS = 1024


def wrap_text(text: str, font: Path, size: int, max_width: int | None) -> str:
    """`text` with line breaks added so no line is wider than `max_width` pixels.

    Breaks at spaces; a word wider than the line is broken between characters. The
    client's own line breaks are kept. Widths come from the same font file FreeType
    will draw with.
    """
    if max_width is None or max_width <= 0:
        return text
    face = ImageFont.truetype(str(font), size)

    def width(line: str) -> float:
        return float(face.getlength(line))

    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if width(candidate) <= max_width or not candidate.strip():
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            for char in word:
                if current and width(current + char) > max_width:
                    lines.append(current)
                    current = char
                else:
                    current += char
        lines.append(current)
    return "\n".join(lines)


def fade_expression(start: float, end: float, fade_in: float, fade_out: float) -> str:
    """drawtext `alpha`: 0→1 over fade_in after start, 1→0 over fade_out before end."""
    parts = ["1"]
    if fade_in > 0:
        parts.append(f"clip((t-{start:.6f})/{fade_in:.6f},0,1)")
    if fade_out > 0:
        parts.append(f"clip(({end:.6f}-t)/{fade_out:.6f},0,1)")
    return "*".join(parts) if len(parts) > 1 else "1"


def ffmpeg_colour(colour: str, keep_alpha: bool = True) -> str:
    """'#RGB', '#RRGGBB' or '#RRGGBBAA' as FFmpeg's '0xRRGGBB[AA]'."""
    match = COLOUR_PATTERN.fullmatch(colour)
    if match is None:
        raise ValueError(f"not a hex colour: {colour!r}")
    digits = match.group(1).upper()
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    if not keep_alpha:
        digits = digits[:6]
    return f"0x{digits}"


def position_expressions(position: Position, margin: int) -> tuple[str, str]:
    """drawtext x and y expressions placing the text block at a preset position."""
    left, centre_x, right = f"{margin}", "(w-text_w)/2", f"w-text_w-{margin}"
    top, centre_y, bottom = f"{margin}", "(h-text_h)/2", f"h-text_h-{margin}"
    placements: dict[str, tuple[str, str]] = {
        "center": (centre_x, centre_y),
        "top": (centre_x, top),
        "bottom": (centre_x, bottom),
        "left": (left, centre_y),
        "right": (right, centre_y),
        "top-left": (left, top),
        "top-right": (right, top),
        "bottom-left": (left, bottom),
        "bottom-right": (right, bottom),
    }
    return placements[position]


# ---------------------------------------------------------------- running FFmpeg


class _Deadline:
    """The time a whole render may take, shared by the FFmpeg runs it consists of."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._ends_at - time.monotonic()

    def expired(self) -> RenderFailed:
        return RenderFailed(f"render timed out after {self.seconds:g} s")


@dataclass(frozen=True)
class _Outcome:
    returncode: int
    stderr_lines: list[str]
    timed_out: bool
    stalled: bool = False


def _run_checked(
    args: list[str],
    deadline: _Deadline,
    on_out_time: Callable[[float], None],
    work_dir: Path,
    stall_seconds: float = STALL_SECONDS,
) -> None:
    """Run FFmpeg; raise RenderFailed with its meaningful line if it fails or overruns."""
    for attempt in range(STALL_RETRIES + 1):
        remaining = deadline.remaining()
        if remaining <= 0:
            raise deadline.expired()
        outcome = _run_ffmpeg(args, remaining, on_out_time, stall_seconds)
        if not outcome.stalled:
            break
        log.warning(
            "FFmpeg made no progress for %g s (run %d); retrying", stall_seconds, attempt + 1
        )
    if outcome.stalled:
        raise RenderFailed(f"FFmpeg stopped making progress ({STALL_RETRIES + 1} runs)")
    if outcome.timed_out:
        raise deadline.expired()
    if outcome.returncode != 0:
        line = meaningful_error_line(outcome.stderr_lines, outcome.returncode)
        # Our scratch paths mean nothing to an API user.
        raise RenderFailed(line.replace(f"{work_dir}/", ""))


def _run_ffmpeg(
    args: list[str],
    timeout: float,
    on_out_time: Callable[[float], None],
    stall_seconds: float = STALL_SECONDS,
) -> _Outcome:
    """Run FFmpeg, feeding each progress `out_time` (seconds) to `on_out_time`.

    Progress is read here, in the calling thread, so a callback that raises (the
    job was taken away) stops the render: FFmpeg is killed on the way out.
    """
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    assert process.stdout is not None and process.stderr is not None
    stderr = _StderrLines(process.stderr)
    stderr.start()
    timed_out = threading.Event()
    watchdog = threading.Timer(timeout, _kill_on_timeout, args=(process, timed_out))
    watchdog.daemon = True
    watchdog.start()
    stall = _StallWatch(process, stall_seconds)
    stall.start()
    try:
        for line in process.stdout:
            stall.saw(line)
            seconds = parse_out_time(line)
            if seconds is not None:
                on_out_time(seconds)
        returncode = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr.join()
        process.stdout.close()
        process.stderr.close()
    return _Outcome(returncode, stderr.lines(), timed_out.is_set(), stall.stalled.is_set())


class _StallWatch(threading.Thread):
    """Kills FFmpeg when its progress has not moved for `seconds`.

    Progress is a new value of one of PROGRESS_KEYS in FFmpeg's `-progress` lines;
    the same block printed again (what a deadlocked FFmpeg does) is not progress."""

    PROGRESS_KEYS = frozenset({"out_time_us", "frame", "total_size"})

    def __init__(self, process: subprocess.Popen[str], seconds: float) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.seconds = seconds
        self.last = time.monotonic()
        self.stalled = threading.Event()
        self._values: dict[str, str] = {}

    def saw(self, line: str) -> None:
        key, _, value = line.strip().partition("=")
        if key in self.PROGRESS_KEYS and self._values.get(key) != value:
            self._values[key] = value
            self.last = time.monotonic()

    def run(self) -> None:
        while self.process.poll() is None:
            if time.monotonic() - self.last > self.seconds:
                self.stalled.set()
                self.process.kill()
                return
            time.sleep(min(0.5, self.seconds / 4))


def _kill_on_timeout(process: subprocess.Popen[str], timed_out: threading.Event) -> None:
    timed_out.set()
    process.kill()


class _StderrLines(threading.Thread):
    """Drains FFmpeg's stderr so the pipe never fills and blocks it.

    Keeps the first lines (where FFmpeg names the cause) and the last ones (where it
    says how it ended); anything in between, such as a per-frame complaint repeated
    thousands of times, is dropped.
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._head: list[str] = []
        self._tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

    def run(self) -> None:
        # Bounded reads: one enormous line cannot take unbounded memory either.
        for line in iter(lambda: self._stream.readline(STDERR_LINE_CHARS), ""):
            kept = self._head if len(self._head) < STDERR_HEAD_LINES else self._tail
            kept.append(line.rstrip("\r\n"))

    def lines(self) -> list[str]:
        return [*self._head, *self._tail]


def parse_out_time(line: str) -> float | None:
    """Seconds from a `-progress` line `out_time_us=…` or `out_time_ms=…`, else None.

    Both keys are microseconds (`out_time_ms` is misnamed in FFmpeg); values can be
    'N/A' or negative before the first frame.
    """
    key, _, value = line.strip().partition("=")
    if key not in ("out_time_us", "out_time_ms"):
        return None
    try:
        microseconds = int(value)
    except ValueError:
        return None
    return max(microseconds, 0) / 1_000_000


# Lines FFmpeg prints around the real cause that only say something failed somewhere:
# since FFmpeg 6 every thread reports its own exit, so these can even come first.
_CASCADE_LINES = re.compile(
    r"Task finished with error code"
    r"|Terminating thread with return code"
    r"|Nothing was written into output file"
    r"|Conversion failed"
    r"|Error initializing filters?\b"
    r"|Error\s*:"
    r"|Error opening (?:input|output) files:"
    r"|Error sending frames to consumers"
    r"|Could not open encoder before EOF"
    r"|Fontconfig "  # printed by the library itself, whatever -loglevel says
)
# "[Parsed_drawtext_0 @ 0x55d...] " prefixes, possibly nested: noise for an API user.
_COMPONENT_PREFIX = re.compile(r"^(?:\[[^\]]*@\s*0x[0-9a-fA-F]+\]\s*)+")


def meaningful_error_line(stderr_lines: Sequence[str], returncode: int) -> str:
    """The stderr line that best says why FFmpeg failed, on one short line.

    We run FFmpeg with `-loglevel error`, so every line is an error; FFmpeg logs the
    cause first ("width not divisible by 2 (3x240)") and then how the failure
    propagated ("Error while opening encoder…", "Error opening output files…").
    So: the first line that is not propagation, else the last line, else the status.
    """
    lines = [_COMPONENT_PREFIX.sub("", line).strip() for line in stderr_lines]
    lines = [line for line in lines if line]
    causes = [line for line in lines if not _CASCADE_LINES.match(line)]
    if causes:
        return _shorten(causes[0])
    if lines:
        return _shorten(lines[-1])
    return f"ffmpeg exited with status {returncode}"


def _shorten(line: str) -> str:
    if len(line) <= ERROR_MESSAGE_CHARS:
        return line
    return line[: ERROR_MESSAGE_CHARS - 1] + "…"


# ---------------------------------------------------------------- progress and checks


class _ProgressReporter:
    """Turns per-run progress into overall progress: only rising, and rationed."""

    def __init__(
        self, callback: ProgressCallback, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._callback = callback
        self._clock = clock
        self._stage = ""
        self._value = 0.0
        self._reported_at = float("-inf")

    @property
    def stage(self) -> str:
        return self._stage

    def start_stage(self, stage: str, value: float) -> None:
        """Always reported: a new stage is news, and it keeps the worker's lease alive."""
        self._stage = stage
        self._report(max(value, self._value))

    def advance(self, value: float) -> None:
        if value - self._value < REPORT_STEP:
            return
        if self._clock() - self._reported_at < REPORT_INTERVAL_SECONDS:
            return
        self._report(value)

    def _report(self, value: float) -> None:
        self._value = value
        self._reported_at = self._clock()
        self._callback(value, self._stage)


def _between(start: float, end: float, fraction: float) -> float:
    """The point `fraction` of the way from start to end, fraction clamped to 0..1."""
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


def _checked_font(font_path: Path) -> Path:
    """The font, if it is a font file; RenderFailed otherwise (see FONT_SIGNATURES)."""
    try:
        with font_path.open("rb") as font:
            signature = font.read(4)
    except OSError:
        raise RenderFailed(f"renderer font {font_path.name!r} is missing") from None
    if signature not in FONT_SIGNATURES:
        raise RenderFailed(f"renderer font {font_path.name!r} is not a TrueType/OpenType font")
    return font_path.resolve()


def renderer_for(settings: Settings) -> FFmpegRenderer:
    """The renderer a deployment's settings ask for (media download policy and limits)."""
    return FFmpegRenderer(
        fetcher=MediaFetcher(
            allow_private=settings.allow_private_urls,
            limits=FetchLimits(
                max_bytes=settings.media_max_bytes,
                timeout_seconds=settings.media_timeout_seconds,
            ),
        )
    )
