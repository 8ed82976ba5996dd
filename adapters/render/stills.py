"""Single frames of a script, each drawn on its own: a preview's storyboard.

A storyboard frame is the script at one instant: a scene at a moment of its own (its
middle), or a transition at its midpoint. Running the movie's graph up to that instant
would cost what the movie costs up to there; a still costs one frame wherever it falls:

- the scene's colour is one frame, timed at the instant, so drawtext's `enable` and
  `alpha` expressions are evaluated then;
- each image or video shown at that instant is one frame of its source at the matching
  point (a video opened there by an input seek, or the frame a preview decoded
  beforehand, sampling.py), timed so that its fades are evaluated at that point too;
  a video that has ended by then (and does not loop) is not drawn, as in the movie;
- a transition draws both scenes so, and blends them with the transition's own `xfade`
  half way.

The instant is the frame the movie draws then: the last frame of the scene's own frame
grid (its fps) at or before it. Sound is not drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ffmpeg

from phantomflow.adapters.render.graph import GraphBuilder, Stream, ffmpeg_colour, source
from phantomflow.adapters.render.probe import MEDIA_FORMATS
from phantomflow.domain.previews import SCENE, Moment
from phantomflow.domain.script import AudioElement, Scene, VideoElement

# Frames of the blend a transition's still is taken from: at 0, 0.5 and 1 (in units
# of BLEND_TICK); the middle one is the transition half way.
BLEND_TICK = "1/2"
LAYER_FRAMES = 3


@dataclass
class StillBuilder(GraphBuilder):
    """GraphBuilder drawing one frame of a scene, at `at` seconds into it."""

    at: float = 0.0
    # Frames of videos decoded beforehand (sampling.py), by (URL, seconds into the file):
    # drawn as pictures instead of seeking the video (any missing one is sought).
    samples: dict[tuple[str, float], Path] = field(default_factory=dict)
    # Every (URL, seconds into the file) of a video frame this still shows, as it is built.
    instants: set[tuple[str, float]] = field(default_factory=set)
    # Set when the next canvas must be an input of the command (see `moment`).
    _canvas_input: bool = False

    def moment(self, moment: Moment) -> Stream:
        """The picture of one storyboard moment."""
        picture = self._moment(moment)
        if self._inputs == 0:
            # ffmpeg-python cannot write a command without an input: with no media
            # shown, the first canvas is drawn again as the one input (a lone demuxer,
            # as graph.py does with silence).
            self._canvas_input = True
            picture = self._moment(moment)
        return picture

    def moment_instants(self, moment: Moment) -> set[tuple[str, float]]:
        """The (URL, seconds into the file) of every video frame `moment` shows."""
        self._moment(moment)
        return set(self.instants)

    def _moment(self, moment: Moment) -> Stream:
        scenes = self.script.scenes
        scene = scenes[moment.scene]
        if moment.kind == SCENE:
            return self.scene_at(moment.scene, scene.duration / 2)
        transition = scene.transition
        assert transition is not None
        leaving = self.scene_at(moment.scene, scene.duration - transition.duration / 2)
        entering = self.scene_at(moment.scene + 1, transition.duration / 2)
        return half_way(leaving, entering, transition.type)

    def scene_at(self, number: int, at: float) -> Stream:
        """Scene `number` alone, at `at` seconds into it (on the frame grid)."""
        self.at = math.floor(at * self.frame.fps + 1e-6) / self.frame.fps
        return self._scene(number, self.script.scenes[number], 0.0)

    # -- what differs from the movie's graph

    def _canvas(self, scene: Scene) -> Stream:
        # One frame (the source stops after half a frame's time), moved to the instant.
        frame_index = round(self.at * self.frame.fps)
        options = {
            "c": ffmpeg_colour(scene.colour, keep_alpha=False),
            "s": f"{self.frame.width}x{self.frame.height}",
            "r": self.frame.rate,
            "d": f"{0.5 / self.frame.fps:.6f}",
        }
        if self._canvas_input:
            self._canvas_input = False
            listed = ":".join(f"{key}={value}" for key, value in options.items())
            canvas = ffmpeg.input(f"color={listed}", f="lavfi").video
        else:
            canvas = source("color", **options)
        return self._composed(canvas).filter("setpts", f"PTS+{frame_index}")

    def _drawn(self, start: float, end: float) -> tuple[float, float]:
        # The layer from the instant on, a few frames of it: the overlay takes the one
        # at the instant (with a single frame, the layer would end at that very time).
        return max(0.0, self.at - start), LAYER_FRAMES / self.frame.fps

    def _video(
        self, url: str, trim: tuple[float, float | None], loop: bool, skip: float, length: float
    ) -> Stream | None:
        trim_start, trim_end = trim
        clip_end = trim_end if trim_end is not None else self.media[url].duration
        if clip_end is not None and clip_end > trim_start and skip >= clip_end - trim_start:
            if not loop:
                return None  # the video has ended: the movie shows what is beneath
            skip %= clip_end - trim_start
        at = round(trim_start + skip, 6)
        self.instants.add((url, at))
        sample = self.samples.get((url, at))
        if sample is not None:
            return ffmpeg.input(
                f"file:{sample}",
                protocol_whitelist="file",
                format_whitelist=MEDIA_FORMATS,
                thread_queue_size=self._next_input(),
            ).video.filter("loop", loop=-1, size=1, start=0)
        return self._input(url, ss=f"{at:.6f}").video

    def _sound(self, element: VideoElement | AudioElement, *_: Any, **__: Any) -> None:
        return None  # a still has no sound


def half_way(leaving: Stream, entering: Stream, transition: str) -> Stream:
    """Two single frames blended by `xfade` at the transition's midpoint: each is held
    for three ticks (0, ½, 1), the fade runs over the whole second, and the frame at ½
    is the one kept."""

    def held(frame: Stream) -> Stream:
        return (
            frame.filter("format", "yuv420p")
            .filter("setpts", "PTS-STARTPTS")
            .filter("loop", loop=2, size=1, start=0)
            .filter("settb", BLEND_TICK)
            .filter("setpts", "N")
        )

    blended = ffmpeg.filter(
        [held(leaving), held(entering)], "xfade", transition=transition, duration=1, offset=0
    )
    return blended.filter("trim", start_frame=1, end_frame=2)
