"""The movie script: what a client asks us to render.

These are plain immutable values. The API validates the JSON a client sends
(see `api/schemas.py`) and hands the domain a normalised dict with every default
filled in; `MovieScript.from_dict` turns that dict into values the renderer and
the pricing rules can rely on. The normalised dict is what the `Submitted` event
stores, so a job renders exactly the script it was charged for.

`from_dict` also reads the scripts recorded before a field existed (old events):
every field added since the first release has a default here.

Timing. Scenes play one after another. A scene's `transition` blends it into the
next scene: the two overlap for the transition's duration, so each transition
shortens the movie by its duration (`MovieScript.duration`, which pricing uses).
An element's `start` and `duration` are inside its scene; an element that would
outlast its scene is cut at the scene's end.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

# Each choice is spelt once, in its Literal type; the tuple of its values is read from it.
Quality = Literal["low", "medium", "high"]
QUALITIES: tuple[Quality, ...] = get_args(Quality)

Position = Literal[
    "center",
    "top",
    "bottom",
    "left",
    "right",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
]
POSITIONS: tuple[Position, ...] = get_args(Position)

Fit = Literal["contain", "cover", "fill"]
FITS: tuple[Fit, ...] = get_args(Fit)

Alignment = Literal["left", "center", "right"]
ALIGNMENTS: tuple[Alignment, ...] = get_args(Alignment)

# The bundled fonts (adapters/render/fonts): rendering never depends on the host's fonts.
FONT_FAMILIES: tuple[str, ...] = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono")
FONT_WEIGHTS: tuple[str, ...] = ("normal", "bold")

# FFmpeg xfade transition names, which we expose as they are.
TRANSITIONS: tuple[str, ...] = (
    "fade",
    "wipeleft",
    "wiperight",
    "wipeup",
    "wipedown",
    "slideleft",
    "slideright",
    "slideup",
    "slidedown",
)

BACKGROUND_MEDIA: tuple[str, ...] = ("image", "video")


@dataclass(frozen=True)
class Limits:
    """What one script may ask for. Documented in docs/api.md; enforced by the API schema."""

    min_dimension: int = 16
    max_width: int = 3840
    max_height: int = 2160
    min_fps: float = 1
    max_fps: float = 60
    max_scene_duration: float = 300
    max_total_duration: float = 600
    max_scenes: int = 50
    max_elements_per_scene: int = 20
    max_text_length: int = 500
    min_font_size: int = 8
    max_font_size: int = 400
    # Distinct media URLs (backgrounds, images, videos, audio, soundtrack) in one script.
    max_media_sources: int = 20
    max_url_length: int = 2048
    max_transition_duration: float = 5
    max_fade: float = 60
    # Element boxes may sit partly outside the frame, within this many pixels.
    max_offset: int = 7680
    max_box_size: int = 7680
    max_volume: float = 4
    max_padding: int = 200
    # How far into a source a trim may start or end, in seconds.
    max_trim: float = 86400


LIMITS = Limits()

DEFAULTS: dict[str, Any] = {
    "width": 1920,
    "height": 1080,
    "fps": 30,
    "quality": "high",
    "background": "#000000",
    "font_size": 48,
    "color": "#FFFFFF",
    "position": "center",
}


class _Record:
    """from_dict / to_dict for a flat frozen dataclass whose fields all have defaults
    except the required ones; unknown keys are ignored (they cannot pass the API)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        names = {field.name for field in fields(cls)}  # type: ignore[arg-type]
        return cls(**{key: value for key, value in data.items() if key in names})

    def to_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Timed:
    """When an element shows inside its scene, and how it fades in and out."""

    start: float = 0
    duration: float | None = None  # None: until the scene ends
    fade_in: float = 0
    fade_out: float = 0

    def window(self, scene_duration: float) -> tuple[float, float]:
        """(start, end) in scene time, cut to the scene; empty when start is past its end."""
        start = min(self.start, scene_duration)
        end = scene_duration if self.duration is None else start + self.duration
        return start, min(end, scene_duration)


@dataclass(frozen=True)
class TextElement(Timed, _Record):
    type: Literal["text"] = "text"
    text: str = ""
    font_family: str = "DejaVu Sans"
    font_weight: str = "normal"
    font_size: int = 48
    color: str = "#FFFFFF"
    background_color: str | None = None  # a box behind the text
    padding: int = 10  # the box's padding, in pixels
    align: Alignment = "center"  # of the lines inside the text block
    position: Position = "center"
    x: int | None = None  # left edge of the text block; overrides the position's x
    y: int | None = None  # top edge of the text block; overrides the position's y
    max_width: int | None = None  # wrap lines at this width in pixels (default: the frame)


@dataclass(frozen=True)
class Framed:
    """Where a picture (an image or a video element) sits on the frame, and how it fills
    its box."""

    x: int = 0
    y: int = 0
    width: int | None = None  # None: the frame's width
    height: int | None = None  # None: the frame's height
    fit: Fit = "contain"
    opacity: float = 1


@dataclass(frozen=True)
class Audible:
    """Which part of a source with sound plays (a video or an audio element), how loud."""

    volume: float = 1
    trim_start: float = 0  # seconds into the source
    trim_end: float | None = None  # None: the source's end


@dataclass(frozen=True)
class ImageElement(Timed, Framed, _Record):
    type: Literal["image"] = "image"
    src: str = ""


@dataclass(frozen=True)
class VideoElement(Timed, Framed, Audible, _Record):
    type: Literal["video"] = "video"
    src: str = ""
    muted: bool = False
    loop: bool = False

    @property
    def audible(self) -> bool:
        return not self.muted and self.volume > 0


@dataclass(frozen=True)
class AudioElement(Timed, Audible, _Record):
    type: Literal["audio"] = "audio"
    src: str = ""


Element = TextElement | ImageElement | VideoElement | AudioElement
ELEMENT_TYPES: dict[str, type[Any]] = {
    "text": TextElement,
    "image": ImageElement,
    "video": VideoElement,
    "audio": AudioElement,
}


@dataclass(frozen=True)
class MediaBackground(_Record):
    """An image or a video filling the frame behind a scene's elements."""

    type: Literal["image", "video"] = "image"
    src: str = ""
    fit: Fit = "cover"
    color: str = "#000000"  # shows where a `contain` fit leaves room
    loop: bool = True  # a video shorter than its scene starts again


@dataclass(frozen=True)
class Transition(_Record):
    type: str = "fade"
    duration: float = 0.5


@dataclass(frozen=True)
class Soundtrack(_Record):
    """Audio under the whole movie, from its start; cut at the movie's end."""

    src: str = ""
    volume: float = 1
    fade_in: float = 0
    fade_out: float = 0


@dataclass(frozen=True)
class Scene:
    duration: float
    background: str | MediaBackground  # a hex colour, or media
    elements: tuple[Element, ...]
    transition: Transition | None = None  # into the next scene

    @property
    def colour(self) -> str:
        """The colour behind everything (a media background's own colour)."""
        return self.background if isinstance(self.background, str) else self.background.color

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scene:
        background = data.get("background", DEFAULTS["background"])
        transition = data.get("transition")
        return cls(
            duration=float(data["duration"]),
            background=background
            if isinstance(background, str)
            else MediaBackground.from_dict(background),
            elements=tuple(
                ELEMENT_TYPES[element.get("type", "text")].from_dict(element)
                for element in data.get("elements", ())
            ),
            transition=None if transition is None else Transition.from_dict(transition),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "background": self.background
            if isinstance(self.background, str)
            else self.background.to_dict(),
            "elements": [element.to_dict() for element in self.elements],
            "transition": None if self.transition is None else self.transition.to_dict(),
        }


@dataclass(frozen=True)
class MediaSource:
    """One URL the renderer must fetch, where the script names it, and what it must be."""

    url: str
    kind: Literal["image", "video", "audio"]
    path: str  # dotted, as in validation errors: "scenes.0.elements.1.src"


@dataclass(frozen=True)
class MovieScript:
    width: int
    height: int
    fps: float
    quality: Quality
    scenes: tuple[Scene, ...]
    soundtrack: Soundtrack | None = None

    @property
    def duration(self) -> float:
        """Total running time in seconds: each transition overlaps two scenes."""
        return sum(scene.duration for scene in self.scenes) - sum(
            scene.transition.duration for scene in self.scenes if scene.transition is not None
        )

    def scene_starts(self) -> list[float]:
        """When each scene starts in the movie, in seconds."""
        starts: list[float] = []
        at = 0.0
        for scene in self.scenes:
            starts.append(at)
            at += scene.duration - (scene.transition.duration if scene.transition else 0)
        return starts

    def media_sources(self) -> list[MediaSource]:
        """Every URL the script names, first mention first (a URL may repeat)."""
        found: list[MediaSource] = []
        for number, scene in enumerate(self.scenes):
            if isinstance(scene.background, MediaBackground):
                found.append(
                    MediaSource(
                        scene.background.src,
                        scene.background.type,
                        f"scenes.{number}.background.src",
                    )
                )
            for index, element in enumerate(scene.elements):
                if not isinstance(element, TextElement):
                    found.append(
                        MediaSource(
                            element.src, element.type, f"scenes.{number}.elements.{index}.src"
                        )
                    )
        if self.soundtrack is not None:
            found.append(MediaSource(self.soundtrack.src, "audio", "soundtrack.src"))
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MovieScript:
        """Build from a validated script dict, filling in the documented defaults."""
        soundtrack = data.get("soundtrack")
        return cls(
            width=int(data.get("width", DEFAULTS["width"])),
            height=int(data.get("height", DEFAULTS["height"])),
            fps=float(data.get("fps", DEFAULTS["fps"])),
            quality=data.get("quality", DEFAULTS["quality"]),
            scenes=tuple(Scene.from_dict(scene) for scene in data["scenes"]),
            soundtrack=None if soundtrack is None else Soundtrack.from_dict(soundtrack),
        )

    def to_dict(self) -> dict[str, Any]:
        """The normalised script: what a job records and a worker renders."""
        return {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "quality": self.quality,
            "scenes": [scene.to_dict() for scene in self.scenes],
            "soundtrack": None if self.soundtrack is None else self.soundtrack.to_dict(),
        }
