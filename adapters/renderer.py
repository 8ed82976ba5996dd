"""Rendering a movie script to an MP4 with FFmpeg.

Graphs are built with ffmpeg-python and run with the FFmpeg binary shipped in the
`imageio-ffmpeg` wheel. Each scene becomes an intermediate MP4 in the work directory
(a `color` source of the scene's background, one `drawtext` per text element); the
concat demuxer then stitches the scenes into the output without re-encoding, because
every scene shares the same encoder settings. The output is H.264 (libx264), yuv420p,
MP4 with `+faststart` so players can start before the whole file has arrived.

Quality maps to libx264 settings (lower CRF is better and bigger; slower presets
compress better for the same CRF):

    =========  =========  ====
    quality    preset     CRF
    =========  =========  ====
    low        veryfast   28
    medium     fast       23
    high       medium     19
    =========  =========  ====

Text is always drawn literally: each element's text goes into a file of its own and
`drawtext` reads it with `textfile=` and `expansion=none`, so quotes, colons,
backslashes and `%{...}` never reach FFmpeg's option or expansion parsers. Colours
keep their alpha for text; a background's alpha is ignored (the video is opaque).

Progress: scenes cover 0..0.95 of the overall progress, weighted by their duration;
`stitching` covers 0.95..0.99 (joining, then measuring the result). The caller
reports 1.0 itself when it records completion.

FFmpeg only ever opens files we created: inputs are `file:` URLs of absolute paths
(never a client-supplied string), and the concat list is read with
`-protocol_whitelist file,pipe`.

Failures raise RenderFailed carrying one line of FFmpeg's stderr: the cause, which
FFmpeg logs first, not the generic propagation lines it prints after it (see
`meaningful_error_line`). A font that is missing or not a font fails the render up
front: with fontconfig in this FFmpeg build, drawtext would otherwise quietly
substitute whatever system font fontconfig finds.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import ffmpeg
import imageio_ffmpeg

from domain.script import MovieScript, Position, Quality, Scene, TextElement

DEFAULT_FONT = Path(__file__).parent / "fonts" / "DejaVuSans.ttf"

ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class EncoderSettings:
    preset: str
    crf: int


QUALITY_SETTINGS: dict[Quality, EncoderSettings] = {
    "low": EncoderSettings(preset="veryfast", crf=28),
    "medium": EncoderSettings(preset="fast", crf=23),
    "high": EncoderSettings(preset="medium", crf=19),
}

# Overall progress: scenes end at SCENES_END, stitching at STITCH_END, measuring at
# MEASURE_END. Never 1.0: completion is the caller's to report.
SCENES_END = 0.95
STITCH_END = 0.97
MEASURE_END = 0.99

# Each report becomes an event in the job's history, so reports are rationed: a new
# report needs both this much time and this much progress since the previous one.
REPORT_INTERVAL_SECONDS = 0.25
REPORT_STEP = 0.02

# Text elements are at least this far from the frame's edges, as a share of its height.
MARGIN_SHARE = 0.05

# How long a standalone measure_duration() may take (a render uses its own deadline).
MEASURE_TIMEOUT_SECONDS = 600.0

STDERR_HEAD_LINES = 50
STDERR_TAIL_LINES = 150
STDERR_LINE_CHARS = 4096
ERROR_MESSAGE_CHARS = 300

# TrueType, OpenType (CFF) and TrueType collection signatures. Checked because this
# FFmpeg build has fontconfig: drawtext silently falls back to some system font when
# `fontfile` cannot be loaded, which would make output depend on the machine.
FONT_SIGNATURES = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"ttcf")

COLOUR_PATTERN = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


@dataclass(frozen=True)
class RenderResult:
    path: Path
    duration_seconds: float  # measured from the real output file, not from the script
    file_size_bytes: int


class RenderFailed(Exception):
    """A render FFmpeg could not do.

    `message` is FFmpeg's one meaningful error line (not the whole stderr), suitable
    for an API user.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FFmpegRenderer:
    def __init__(
        self,
        ffmpeg_exe: str | None = None,
        font_path: Path | None = None,
        timeout_seconds: float = 3600,
    ) -> None:
        self.ffmpeg_exe = ffmpeg_exe or imageio_ffmpeg.get_ffmpeg_exe()
        self.font_path = font_path or DEFAULT_FONT
        self.timeout_seconds = timeout_seconds

    def render(
        self,
        script: MovieScript,
        output_path: Path,
        on_progress: ProgressCallback,
        work_dir: Path,
    ) -> RenderResult:
        """Render `script` to `output_path`; intermediate files go in `work_dir`.

        Raises RenderFailed when FFmpeg cannot render the script or the deadline
        passes. An exception from `on_progress` kills FFmpeg and propagates as is;
        OSError means the FFmpeg binary could not be started (a deployment fault).
        """
        deadline = _Deadline(self.timeout_seconds)
        progress = _ProgressReporter(on_progress)
        work_dir = work_dir.resolve()
        output_path = output_path.resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        font = _checked_font(self.font_path)

        scene_files = self._render_scenes(script, font, work_dir, progress, deadline)
        progress.start_stage("stitching", SCENES_END)
        self._stitch(scene_files, output_path, work_dir, script.duration, progress, deadline)
        duration = _measure(
            self.ffmpeg_exe,
            output_path,
            deadline,
            lambda done: progress.advance(
                _between(STITCH_END, MEASURE_END, done / script.duration)
            ),
        )
        return RenderResult(
            path=output_path,
            duration_seconds=duration,
            file_size_bytes=output_path.stat().st_size,
        )

    def _render_scenes(
        self,
        script: MovieScript,
        font: Path,
        work_dir: Path,
        progress: _ProgressReporter,
        deadline: _Deadline,
    ) -> list[Path]:
        files: list[Path] = []
        elapsed = 0.0
        for number, scene in enumerate(script.scenes, start=1):
            start = SCENES_END * elapsed / script.duration
            end = SCENES_END * (elapsed + scene.duration) / script.duration
            progress.start_stage(f"rendering_scene_{number}", start)
            target = work_dir / f"scene_{number:03d}.mp4"
            command = _scene_command(script, scene, number, font, work_dir, target)
            _run_checked(
                command.compile(cmd=self.ffmpeg_exe),
                deadline,
                # Bind this scene's range now: the lambda outlives the loop iteration.
                lambda done, s=start, e=end, d=scene.duration: progress.advance(
                    _between(s, e, done / d)
                ),
                work_dir,
            )
            files.append(target)
            elapsed += scene.duration
        return files

    def _stitch(
        self,
        scene_files: Sequence[Path],
        output_path: Path,
        work_dir: Path,
        total_duration: float,
        progress: _ProgressReporter,
        deadline: _Deadline,
    ) -> None:
        concat_list = work_dir / "scenes.ffconcat"
        concat_list.write_text(_concat_list(scene_files, work_dir), encoding="utf-8")
        command = (
            ffmpeg.input(
                f"file:{concat_list}",
                f="concat",
                safe=1,  # entries are bare names next to the list; refuse anything else
                protocol_whitelist="file,pipe",
            )
            .video.output(
                f"file:{output_path}",
                f="mp4",
                c="copy",
                movflags="+faststart",
            )
            .global_args(*_COMMON_ARGS)
            .overwrite_output()
        )
        _run_checked(
            command.compile(cmd=self.ffmpeg_exe),
            deadline,
            lambda done: progress.advance(_between(SCENES_END, STITCH_END, done / total_duration)),
            work_dir,
        )


def measure_duration(path: Path, ffmpeg_exe: str | None = None) -> float:
    """The playing time of the first video stream of `path`, in seconds, from decoding it."""
    exe = ffmpeg_exe or imageio_ffmpeg.get_ffmpeg_exe()
    return _measure(exe, path.resolve(), _Deadline(MEASURE_TIMEOUT_SECONDS), lambda _done: None)


# ---------------------------------------------------------------- building commands

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


def _scene_command(
    script: MovieScript,
    scene: Scene,
    number: int,
    font: Path,
    work_dir: Path,
    target: Path,
) -> ffmpeg.nodes.OutputStream:
    """One scene: its background with each text element drawn on top, encoded."""
    video = ffmpeg.input(_colour_source(script, scene), f="lavfi").video
    margin = round(MARGIN_SHARE * script.height)
    for index, element in enumerate(scene.elements, start=1):
        text_file = work_dir / f"scene_{number:03d}_text_{index:02d}.txt"
        # Bytes, not text mode: the text reaches drawtext exactly as the client sent it.
        text_file.write_bytes(element.text.encode("utf-8"))
        video = _draw_text(video, element, text_file, font, margin)
    encoder = QUALITY_SETTINGS[script.quality]
    return (
        video.output(
            f"file:{target}",
            f="mp4",
            vcodec="libx264",
            preset=encoder.preset,
            crf=encoder.crf,
            pix_fmt="yuv420p",
        )
        .global_args(*_COMMON_ARGS)
        .overwrite_output()
    )


def _colour_source(script: MovieScript, scene: Scene) -> str:
    """The lavfi `color` source. Every value is a number or a validated hex colour."""
    colour = ffmpeg_colour(scene.background, keep_alpha=False)
    size = f"{script.width}x{script.height}"
    return f"color=c={colour}:s={size}:r={script.fps:g}:d={scene.duration:.6f}"


def _draw_text(
    video: ffmpeg.nodes.FilterableStream,
    element: TextElement,
    text_file: Path,
    font: Path,
    margin: int,
) -> ffmpeg.nodes.FilterableStream:
    x, y = position_expressions(element.position, margin)
    # Keyword arguments only: ffmpeg-python escapes them correctly for both the option
    # and the filtergraph level (paths with spaces, colons or quotes stay intact).
    return video.filter(
        "drawtext",
        fontfile=str(font),
        textfile=str(text_file),
        expansion="none",
        fontcolor=ffmpeg_colour(element.color),
        fontsize=element.font_size,
        x=x,
        y=y,
    )


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


def _concat_list(scene_files: Iterable[Path], work_dir: Path) -> str:
    """An ffconcat script naming the scenes relative to the list (so `safe=1` accepts them)."""
    lines = ["ffconcat version 1.0"]
    for path in scene_files:
        name = path.relative_to(work_dir).as_posix()
        quoted = name.replace("'", "'\\''")  # the concat script's own quoting rule
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def _measure(
    exe: str, path: Path, deadline: _Deadline, on_out_time: Callable[[float], None]
) -> float:
    # Decoding, not stream copy: with -c copy, out_time is the last packet's decode
    # time and falls short by the B-frame reordering delay. Skipping the loop filter
    # makes decoding cheaper without changing any timestamp.
    args = [
        exe,
        *_COMMON_ARGS,
        "-protocol_whitelist",
        "file,pipe",
        "-skip_loop_filter",
        "all",
        "-i",
        f"file:{path}",
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-",
    ]
    seen: list[float] = []

    def record(seconds: float) -> None:
        seen.append(seconds)
        on_out_time(seconds)

    _run_checked(args, deadline, record, path.parent)
    if not seen:
        raise RenderFailed("could not measure the rendered video's duration")
    return seen[-1]


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


def _run_checked(
    args: list[str],
    deadline: _Deadline,
    on_out_time: Callable[[float], None],
    work_dir: Path,
) -> None:
    """Run FFmpeg; raise RenderFailed with its meaningful line if it fails or overruns."""
    remaining = deadline.remaining()
    if remaining <= 0:
        raise deadline.expired()
    outcome = _run_ffmpeg(args, remaining, on_out_time)
    if outcome.timed_out:
        raise deadline.expired()
    if outcome.returncode != 0:
        line = meaningful_error_line(outcome.stderr_lines, outcome.returncode)
        # Our scratch paths mean nothing to an API user.
        raise RenderFailed(line.replace(f"{work_dir}/", ""))


def _run_ffmpeg(args: list[str], timeout: float, on_out_time: Callable[[float], None]) -> _Outcome:
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
    try:
        for line in process.stdout:
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
    return _Outcome(returncode, stderr.lines(), timed_out.is_set())


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
