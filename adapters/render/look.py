"""The frame a filter graph draws: its size and rate, and how a preview's differ.

A render draws the script as written (`Look.of`). A preview draws the same script
smaller and at a lower rate (`preview_look`): every pixel quantity of the script (sizes,
positions, font sizes, paddings, margins) is multiplied by one scale, and text is
wrapped with the full-size font metrics, so a preview breaks its lines exactly where
the render will.
"""

from __future__ import annotations

from dataclasses import dataclass

from phantomflow.domain.script import MovieScript

# A preview fits in this square: at most 512 px wide (Shotstack's preview is 512×288),
# and a portrait script is no taller than a landscape one is wide.
PREVIEW_MAX_SIDE = 512
# A preview plays at 12 to 15 frames a second (a script slower than that, at its own).
PREVIEW_MIN_FPS = 12.0
PREVIEW_MAX_FPS = 15.0


@dataclass(frozen=True)
class Look:
    width: int
    height: int
    fps: float
    scale: float  # output pixels per script pixel

    @classmethod
    def of(cls, script: MovieScript) -> Look:
        """The script as written: the render's look."""
        return cls(script.width, script.height, script.fps, 1.0)

    def px(self, value: float) -> int:
        """A script length in output pixels."""
        return round(value * self.scale)

    @property
    def rate(self) -> str:
        """The frame rate as FFmpeg options take it."""
        return f"{self.fps:g}"


def preview_look(script: MovieScript) -> Look:
    """The look of a preview: the script scaled to fit PREVIEW_MAX_SIDE (never up), even
    sides (H.264 4:2:0), at `preview_fps`."""
    scale = min(1.0, PREVIEW_MAX_SIDE / max(script.width, script.height))
    return Look(
        width=_even(script.width * scale),
        height=_even(script.height * scale),
        fps=preview_fps(script.fps),
        scale=scale,
    )


def preview_fps(fps: float) -> float:
    """A preview's frame rate: the script's own up to PREVIEW_MAX_FPS; above it, a whole
    fraction of it between PREVIEW_MIN_FPS and PREVIEW_MAX_FPS when there is one (30 →
    15, 24 → 12, 25 → 12.5, 60 → 15), so every kept frame is one the render shows and
    motion stays even; else PREVIEW_MAX_FPS."""
    if fps <= PREVIEW_MAX_FPS:
        return fps
    for divisor in range(2, int(fps // PREVIEW_MIN_FPS) + 1):
        if PREVIEW_MIN_FPS <= fps / divisor <= PREVIEW_MAX_FPS:
            return fps / divisor
    return PREVIEW_MAX_FPS


def _even(length: float) -> int:
    return max(2, round(length / 2) * 2)
