"""Running FFmpeg and watching it: progress read live, stderr drained, stalls killed.

Every FFmpeg run gets COMMON_ARGS: `-progress pipe:1` gives machine-readable
`key=value` progress on stdout, which `run_checked` reads line by line in the
calling thread (so a progress callback that raises kills FFmpeg), and
`-loglevel error` keeps stderr to the lines worth reporting. Three things stop a
run early: the render's `Deadline`, a stall (`_StallWatch`: the progress block has
not moved for `stall_seconds`; the run is tried again), and an exception from the
progress callback.

A failed run raises RenderFailed carrying one line of FFmpeg's stderr: the cause,
which FFmpeg logs first, not the generic propagation lines it prints after it (see
`meaningful_error_line`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from phantomflow.adapters.render.failure import RenderFailed
from phantomflow.adapters.render.progress import REPORT_INTERVAL_SECONDS

log = logging.getLogger(__name__)

# FFmpeg 9's threaded scheduler can deadlock on some multi-input graphs (seen here about
# one run in six on a graph of overlays, text and a transition, at random, with no error).
# Making colours and silence inside the graph instead of as lavfi inputs (graph._Source)
# took one such graph from 7 hangs in 150 runs to none in 450; the watchdog stays for
# whatever else may still hang. A deadlocked FFmpeg still prints its progress block
# every -stats_period, the same block each time: a run whose progress (output time,
# frames, bytes written) has not moved for STALL_SECONDS is killed and run again, up
# to STALL_RETRIES times, so a stuck FFmpeg never holds a worker until the render
# deadline.
STALL_SECONDS = 20.0
STALL_RETRIES = 3

STDERR_HEAD_LINES = 50
STDERR_TAIL_LINES = 150
STDERR_LINE_CHARS = 4096
ERROR_MESSAGE_CHARS = 300

# -nostdin: FFmpeg must never wait on or swallow our stdin. -progress pipe:1 gives
# machine-readable key=value progress on stdout; -loglevel error keeps stderr to the
# lines worth reporting.
COMMON_ARGS = (
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

# A preview's proxy and stills filter frames of at most 512×288: splitting each filter's
# work across threads costs more in hand-overs than it gains (measured on the six-scene
# script of bench/preview.py: about a tenth less CPU, and no slower). Decoders keep
# their threads. (The decoding run, which scales the source's own frames, keeps two:
# sampling.DECODING_FILTER_THREADS.)
PREVIEW_ARGS = ("-filter_complex_threads", "1")


# FFmpeg runs are prioritised by who waits for them: a storyboard's stills (a user is
# looking at the page) at the normal priority, a preview's proxy below them, renders
# below both (PROXY_NICENESS, RENDER_NICENESS). Run through `nice`, so every thread of
# the FFmpeg process has it from its start (setpriority after the start would reach
# only its main thread). Where there is no `nice`, everything runs at one priority.
NICE = shutil.which("nice")
PROXY_NICENESS = 5
RENDER_NICENESS = 10


class Deadline:
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


def run_checked(
    args: list[str],
    deadline: Deadline,
    on_out_time: Callable[[float], None],
    work_dir: Path,
    stall_seconds: float = STALL_SECONDS,
    niceness: int = 0,
) -> None:
    """Run FFmpeg; raise RenderFailed with its meaningful line if it fails or overruns.

    `niceness` above 0 runs it at a lower CPU priority (see NICE)."""
    if niceness and NICE is not None and os.access(args[0], os.X_OK):
        # (An FFmpeg that cannot be run still raises OSError, not nice's exit code.)
        args = [NICE, "-n", str(niceness), *args]
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
