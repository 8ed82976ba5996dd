"""Building the FFmpeg commands for a script: one filter graph for the movie, one poster frame.

The whole script is one FFmpeg run of one filter graph (built with ffmpeg-python): each
scene is a `color` canvas with its media background, images and videos overlaid
(scaled by their fit, faded, made translucent) and text drawn; scenes are joined by
`xfade` (transitions, which overlap the two scenes) or `concat`; every sound (audio
elements, the sound of video elements, the soundtrack) is trimmed, faded, delayed to
its place and mixed.

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
media, `-format_whitelist` of plain media containers (probe.MEDIA_FORMATS).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ffmpeg
from ffmpeg import nodes as ffmpeg_nodes
from PIL import ImageFont

from phantomflow.adapters.render.look import Look
from phantomflow.adapters.render.probe import MEDIA_FORMATS, MediaInfo
from phantomflow.adapters.render.process import COMMON_ARGS
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

# Text elements are at least this far from the frame's edges, as a share of its height.
MARGIN_SHARE = 0.05

# The poster frame is taken this far into the movie (or at its middle, if shorter).
POSTER_AT_SECONDS = 1.0


def poster_time(duration: float) -> float:
    """When the poster frame is taken. The encoder puts a keyframe there, so taking
    the poster decodes one frame instead of the GOP before it (0.21 -> 0.10 s at 1080p,
    for a file about 1 % bigger)."""
    return min(POSTER_AT_SECONDS, duration / 2)


COLOUR_PATTERN = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")

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
    """The one FFmpeg command for a script: inputs, the filter graph, two outputs.

    `look` is the frame drawn: the script's own (a render), or a smaller and slower one
    (a preview, look.py). `decoding` are decoder options for every media input (a
    preview's shortcuts, preview.py; a render decodes exactly)."""

    script: MovieScript
    fonts: dict[tuple[str, str], Path]
    media: dict[str, MediaInfo]
    work_dir: Path
    look: Look | None = None
    decoding: dict[str, str] = field(default_factory=dict)
    # Small copies of videos made beforehand (a preview's, sampling.py), by URL: their
    # pictures are read from these instead (their sound still from the source itself).
    pictures: dict[str, MediaInfo] = field(default_factory=dict)
    sounds: list[Stream] = field(default_factory=list)
    _texts: int = 0
    _loops: int = 0
    _inputs: int = 0

    def __post_init__(self) -> None:
        self.frame = self.look or Look.of(self.script)

    def build(self, output_path: Path) -> Any:
        """The render: the movie encoded at the script's quality."""
        script = self.script
        video, sound = self.streams()
        encoder = QUALITY_SETTINGS[script.quality]
        movie = ffmpeg.output(
            video.filter("format", "yuv420p"),
            sound,
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
        return movie.global_args(*COMMON_ARGS).overwrite_output()

    def streams(self) -> tuple[Stream, Stream]:
        """The whole movie: its picture (scenes joined by their transitions) and its
        sound (every sound mixed, or silence)."""
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
        return video, self._soundtrack_mix()

    # -- scenes

    def _scene(self, number: int, scene: Scene, scene_start: float) -> Stream:
        frame = self.frame
        canvas = self._canvas(scene)
        if isinstance(scene.background, MediaBackground):
            background = scene.background
            layer = self._picture(
                background.src,
                is_image=background.type == "image",
                box=(frame.width, frame.height),
                fit=background.fit,
                window=(0.0, scene.duration),
                loop=background.loop,
                trim=(0.0, None),
            )
            if layer is not None:
                canvas = self._overlay(canvas, layer, 0, 0, frame.width, frame.height, 0.0)
        margin = round(MARGIN_SHARE * self.script.height)
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

    def _canvas(self, scene: Scene) -> Stream:
        """The scene's colour, for the scene's length: what everything is drawn on."""
        canvas = source(
            "color",
            c=ffmpeg_colour(scene.colour, keep_alpha=False),
            s=f"{self.frame.width}x{self.frame.height}",
            r=self.frame.rate,
            d=f"{scene.duration:.6f}",
        )
        return self._composed(canvas)

    def _composed(self, canvas: Stream) -> Stream:
        """A scene's canvas in the look's pixel format, when it has one (look.py)."""
        pixel_format = self.frame.pixel_format
        return canvas if pixel_format is None else canvas.filter("format", pixel_format)

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
        # Wrapped in script pixels above; drawn in the look's pixels from here.
        frame = self.frame
        x, y = position_expressions(element.position, frame.px(edge))
        options: dict[str, Any] = {
            "fontfile": str(font),
            "textfile": str(text_file),
            "expansion": "none",
            "fontcolor": ffmpeg_colour(element.color),
            "fontsize": max(1, frame.px(element.font_size)),
            "x": x if element.x is None else str(frame.px(element.x)),
            "y": y if element.y is None else str(frame.px(element.y)),
            "text_align": element.align[0].upper(),
            "alpha": fade_expression(start, end, element.fade_in, element.fade_out),
            "enable": f"between(t,{start:.6f},{end:.6f})",
        }
        if element.background_color is not None:
            options.update(
                box=1,
                boxcolor=ffmpeg_colour(element.background_color),
                boxborderw=frame.px(element.padding),
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
        frame = self.frame
        box_w = max(1, frame.px(element.width or self.script.width))
        box_h = max(1, frame.px(element.height or self.script.height))
        is_video = isinstance(element, VideoElement)
        trim = (element.trim_start, element.trim_end) if is_video else (0.0, None)
        loop = element.loop if is_video else False
        layer = self._picture(
            element.src,
            is_image=not is_video,
            box=(box_w, box_h),
            fit=element.fit,
            window=(start, end),
            loop=loop,
            trim=trim,
        )
        if layer is None:
            return canvas
        layer = layer.filter("format", frame.layer_format)
        if element.opacity < 1:
            # On the alpha plane alone: `lut` works on RGBA and YUVA alike.
            layer = layer.filter("lut", a=f"val*{element.opacity:.4f}")
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
        # A silent clip (no sound track) adds nothing to the mix rather than failing
        # the render on a missing stream: the user did not ask for its sound.
        if is_video and element.audible and self.media[element.src].has_audio:
            self._sound(element, start, end, scene_start, element.volume, loop=element.loop)
        x, y = frame.px(element.x), frame.px(element.y)
        return self._overlay(canvas, layer, x, y, box_w, box_h, start)

    def _picture(
        self,
        url: str,
        is_image: bool,
        box: tuple[int, int],
        fit: str,
        window: tuple[float, float],
        loop: bool,
        trim: tuple[float, float | None],
    ) -> Stream | None:
        """A source's picture shown from `window`'s start to its end (scene time), at the
        look's rate, fitted into `box`; its frames are timed from the window's start.
        None when nothing of it is drawn (a video that has ended)."""
        skip, length = self._drawn(*window)
        if is_image:
            # Fitted once, then repeated: fitting every repeated frame scaled the same
            # picture again each time (a 640x360 background into a preview's 512x288:
            # 0.13 s of CPU for 81 frames, against 0.02 s once).
            picture = self._fitted(self._input(url).video, box, fit)
            if self.frame.pixel_format is not None:
                # Converted once too, to what it is overlaid in.
                picture = picture.filter("format", self.frame.layer_format)
            picture = picture.filter("loop", loop=-1, size=1, start=0)
        else:
            picture = self._video(url, trim, loop, skip, length)
            if picture is None:
                return None
        picture = picture.filter("fps", fps=self.frame.rate)
        picture = picture.filter("trim", duration=f"{length:.6f}")
        if not is_image:
            picture = self._fitted(picture, box, fit)
        timing = f"PTS-STARTPTS+{skip:.6f}/TB" if skip else "PTS-STARTPTS"
        return picture.filter("setsar", "1").filter("setpts", timing)

    @staticmethod
    def _fitted(picture: Stream, box: tuple[int, int], fit: str) -> Stream:
        """`picture` scaled into `box` by `fit`."""
        width, height = box
        if fit == "fill":
            return picture.filter("scale", width, height)
        if fit == "cover":
            return picture.filter(
                "scale", width, height, force_original_aspect_ratio="increase"
            ).filter("crop", width, height)
        return picture.filter("scale", width, height, force_original_aspect_ratio="decrease")

    def _drawn(self, start: float, end: float) -> tuple[float, float]:
        """Which part of a layer shown from `start` to `end` (scene time) this graph
        draws: (seconds into the layer, for how long). A movie draws all of it."""
        return 0.0, end - start

    def _video(
        self, url: str, trim: tuple[float, float | None], loop: bool, skip: float, length: float
    ) -> Stream | None:
        """A video source's picture, `skip` seconds into its trimmed (looped) clip, for
        `length` seconds. A movie plays every video from its start: `skip` is 0."""
        return self._clip(url, trim, length, loop, self.pictures.get(url)).video

    def _overlay(
        self, canvas: Stream, layer: Stream, x: int, y: int, box_w: int, box_h: int, start: float
    ) -> Stream:
        # Shift the layer (timed from 0, or from the part of it drawn) to its start in the
        # scene; before and after, the canvas shows through (eof_action=pass). A
        # `contain` fit is centred in its box.
        layer = layer.filter("setpts", f"PTS+{start:.6f}/TB")
        return ffmpeg.filter(
            [canvas, layer],
            "overlay",
            x=f"{x}+({box_w}-overlay_w)/2",
            y=f"{y}+({box_h}-overlay_h)/2",
            eof_action="pass",
            format=self.frame.overlay_format,
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

    def _input(self, url: str, copy: MediaInfo | None = None, **options: Any) -> Stream:
        """The source `url` as a new input; or `copy`, a small copy of its picture."""
        info = copy or self.media[url]
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
            # The decoding shortcuts are for the source's codec, not the copy's.
            **({} if copy else self.decoding),
            **options,
        )

    def _next_input(self) -> int:
        self._inputs += 1
        return INPUT_QUEUE_PACKETS + self._inputs

    def _clip(
        self,
        url: str,
        trim: tuple[float, float | None],
        length: float,
        loop: bool,
        copy: MediaInfo | None = None,
    ) -> Stream:
        """A video or audio source from trim start to trim end, repeated if `loop`
        (read from `copy`, a small copy of its picture, when there is one)."""
        trim_start, trim_end = trim
        options: dict[str, Any] = {}
        if trim_start > 0:
            options["ss"] = f"{trim_start:.6f}"
        if trim_end is not None:
            options["t"] = f"{trim_end - trim_start:.6f}"
        if not loop:
            return self._input(url, copy, **options)
        info = copy or self.media[url]
        clip = (trim_end if trim_end is not None else info.duration or 0) - trim_start
        if clip <= 0:
            # Length unknown: repeat the whole file instead.
            return self._input(url, copy, stream_loop=-1)
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
            **({} if copy else self.decoding),
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


def poster_command(movie_path: Path, poster_path: Path, at: float) -> Any:
    """The run that takes the poster: one frame decoded from the finished movie at `at`
    seconds, as a JPEG. Taken from the file at the keyframe the encoder put there (see
    `poster_time`), not as a second output of the movie's run: that could stall FFmpeg's
    scheduler."""
    return (
        ffmpeg.input(f"file:{movie_path}", ss=f"{at:.6f}", protocol_whitelist="file")
        .video.output(
            f"file:{poster_path}",
            f="image2",
            update=1,
            vcodec="mjpeg",
            **{"frames:v": 1, "q:v": 3},
        )
        .global_args(*COMMON_ARGS)
        .overwrite_output()
    )
