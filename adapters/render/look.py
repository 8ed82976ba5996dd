"""The frame a filter graph draws: its size and rate, and how a preview's differ.

A render draws the script as written (`Look.of`). A preview draws the same script
smaller and at a lower rate (`preview_look`): every pixel quantity of the script (sizes,
positions, font sizes, paddings, margins) is multiplied by one scale, and text is
wrapped with the full-size font metrics, so a preview breaks its lines exactly where
the render will.

A preview also composes its scenes in yuv420p, the format it is encoded in, where a
render lets FFmpeg negotiate: as soon as a layer has transparency (every image and
video in a box) the negotiation settles on planar RGB with alpha for the whole scene,
so text, overlays and transitions work on four full planes, every video frame is
converted to RGB and the result back. Exact for a render; for a 512 px preview, half
its filter graph's CPU for colour no one can see (docs/performance.md).
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
# What a preview composes its scenes in (and what layers with transparency are made).
PREVIEW_PIXEL_FORMAT = "yuv420p"
PREVIEW_LAYER_FORMAT = "yuva420p"
PREVIEW_OVERLAY_FORMAT = "yuv420"  # the overlay filter's name for blending into yuv420p


@dataclass(frozen=True)
class Look:
    width: int
    height: int
    fps: float
    scale: float  # output pixels per script pixel
    # The pixel format scenes are composed in; None: FFmpeg's choice (a render's).
    pixel_format: str | None = None

    @classmethod
    def of(cls, script: MovieScript) -> Look:
        """The script as written: the render's look."""
        return cls(script.width, script.height, script.fps, 1.0)

    def px(self, value: float) -> int:
        """A script length in output pixels."""
        return round(value * self.scale)

    @property
    def layer_format(self) -> str:
        """The format a layer with transparency is overlaid in."""
        return PREVIEW_LAYER_FORMAT if self.pixel_format else "rgba"

    @property
    def overlay_format(self) -> str:
        """The overlay filter's `format`: blended in the composition's format, if any."""
        return PREVIEW_OVERLAY_FORMAT if self.pixel_format else "auto"

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
        pixel_format=PREVIEW_PIXEL_FORMAT,
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
