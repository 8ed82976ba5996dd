"""The movie script: what a client asks us to render.

These are plain immutable values. The API validates the JSON a client sends
(see `api/schemas.py`) and hands the domain a normalised dict with every default
filled in; `MovieScript.from_dict` turns that dict into values the renderer and
the pricing rules can rely on. The normalised dict is what the `Submitted` event
stores, so a job renders exactly the script it was charged for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Quality = Literal["low", "medium", "high"]
QUALITIES: tuple[Quality, ...] = ("low", "medium", "high")

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
POSITIONS: tuple[Position, ...] = (
    "center",
    "top",
    "bottom",
    "left",
    "right",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
)


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


@dataclass(frozen=True)
class TextElement:
    text: str
    font_size: int
    color: str
    position: Position
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class Scene:
    duration: float
    background: str
    elements: tuple[TextElement, ...]


@dataclass(frozen=True)
class MovieScript:
    width: int
    height: int
    fps: float
    quality: Quality
    scenes: tuple[Scene, ...]

    @property
    def duration(self) -> float:
        """Total running time in seconds: scenes play one after another."""
        return sum(scene.duration for scene in self.scenes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MovieScript:
        """Build from a validated script dict, filling in the documented defaults."""
        return cls(
            width=int(data.get("width", DEFAULTS["width"])),
            height=int(data.get("height", DEFAULTS["height"])),
            fps=float(data.get("fps", DEFAULTS["fps"])),
            quality=data.get("quality", DEFAULTS["quality"]),
            scenes=tuple(
                Scene(
                    duration=float(scene["duration"]),
                    background=scene.get("background", DEFAULTS["background"]),
                    elements=tuple(
                        TextElement(
                            text=element["text"],
                            font_size=int(element.get("font_size", DEFAULTS["font_size"])),
                            color=element.get("color", DEFAULTS["color"]),
                            position=element.get("position", DEFAULTS["position"]),
                        )
                        for element in scene.get("elements", ())
                    ),
                )
                for scene in data["scenes"]
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The normalised script: what a job records and a worker renders."""
        return {
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "quality": self.quality,
            "scenes": [
                {
                    "duration": scene.duration,
                    "background": scene.background,
                    "elements": [
                        {
                            "type": element.type,
                            "text": element.text,
                            "font_size": element.font_size,
                            "color": element.color,
                            "position": element.position,
                        }
                        for element in scene.elements
                    ],
                }
                for scene in self.scenes
            ],
        }
