"""Progress timing: where a render is (its stage) and how far (0..1), rationed for events.

A render reports `downloading` while it fetches its media (up to DOWNLOAD_END),
then by FFmpeg's output time `rendering_scene_N` for each scene (`stitching` while
a transition between two is drawn) up to FRAMES_END, then `encoding` while the file
is finished. Each report becomes an event in the job's history, so reports only rise
and are rationed (REPORT_INTERVAL_SECONDS and REPORT_STEP); a new stage is always
reported. The last `downloading` report, once every source is there, says how many
came from the media cache (`media_cache`: hits and misses).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from phantomflow.domain.script import MovieScript


class ProgressCallback(Protocol):
    """What a render is given to report to: overall progress 0..1 and stage, and with
    the last `downloading` report `media_cache` ({"hits": n, "misses": n})."""

    def __call__(
        self, progress: float, stage: str, *, media_cache: dict[str, int] | None = None
    ) -> None: ...


# Overall progress: downloading ends at DOWNLOAD_END (when there is anything to
# download) and the frames at FRAMES_END, where `encoding` (the file finished, its
# poster taken) stays. Never 1.0: completion is the caller's to report.
DOWNLOAD_END = 0.10
FRAMES_END = 0.95

# Each report becomes an event in the job's history, so reports are rationed: a new
# report needs both this much time and this much progress since the previous one.
REPORT_INTERVAL_SECONDS = 0.25
REPORT_STEP = 0.02


class Timeline:
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


class ProgressReporter:
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

    def media_fetched(self, value: float, hits: int, misses: int) -> None:
        """Every source is there (always reported): how many came from the cache."""
        self._value = max(value, self._value)
        self._reported_at = self._clock()
        self._callback(self._value, self._stage, media_cache={"hits": hits, "misses": misses})

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


def between(start: float, end: float, fraction: float) -> float:
    """The point `fraction` of the way from start to end, fraction clamped to 0..1."""
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


def frame_progress(
    progress: ProgressReporter, script: MovieScript, frames_start: float
) -> Callable[[float], None]:
    """Starts the first scene's stage and returns what turns FFmpeg's output time into
    stage and overall progress, from `frames_start` to FRAMES_END."""
    stage_at = Timeline(script).stage_at
    progress.start_stage(stage_at(0.0), frames_start)

    def on_out_time(seconds: float) -> None:
        value = between(frames_start, FRAMES_END, seconds / script.duration)
        stage = stage_at(seconds)
        if stage != progress.stage:
            progress.start_stage(stage, value)
        else:
            progress.advance(value)

    return on_out_time
