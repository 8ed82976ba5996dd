"""Drawing a preview with real FFmpeg: the storyboard's stills, then the proxy.

Each still is compared with the frame the render shows at the same moment, pixel by
pixel at a few places; the media are made here and served over loopback (the fixtures
of tests/test_media.py).
"""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.adapters.render.look import preview_fps, preview_look
from phantomflow.adapters.render.preview import ProxyResult, Still
from phantomflow.domain.previews import SCENE, TRANSITION, storyboard_moments
from phantomflow.domain.script import MovieScript
from tests.media import Recorder, ffprobe, frame_rgb

# The media fixtures (`media_dir`, `server`) are test_media's.
from tests.test_media import (  # noqa: F401
    MediaServer,
    close_to,
    local_renderer,
    make,
    media_dir,
    server,
)

pytestmark = pytest.mark.ffmpeg


def pixel(jpeg: Path, x: int, y: int) -> tuple[int, int, int]:
    with Image.open(jpeg) as image:
        red, green, blue = image.convert("RGB").getpixel((x, y))
    return red, green, blue


def movie(*scenes: dict, width: int = 320, height: int = 240, fps: float = 15) -> MovieScript:
    return MovieScript.from_dict(
        {"width": width, "height": height, "fps": fps, "quality": "low", "scenes": list(scenes)}
    )


HANDED_OVER = "(the storyboard handed over)"


def preview(
    script: MovieScript, tmp_path: Path, renderer: FFmpegRenderer | None = None
) -> tuple[list[Still], ProxyResult, Recorder]:
    """The preview's stills, its proxy, and its progress, in which HANDED_OVER marks when
    the storyboard was handed over."""
    stills: list[Still] = []
    progress = Recorder()

    def on_storyboard(drawn: list[Still]) -> None:
        stills.extend(drawn)
        progress.calls.append((-1, HANDED_OVER))

    result = (renderer or FFmpegRenderer()).preview(
        script, tmp_path / "out", progress, on_storyboard, tmp_path / "work"
    )
    return stills, result, progress


# --- sizes, rates and moments --------------------------------------------------------


@pytest.mark.parametrize(
    ("fps", "expected"),
    [(30, 15), (24, 12), (25, 12.5), (60, 15), (50, 12.5), (20, 15), (15, 15), (10, 10)],
)
def test_a_preview_plays_at_12_to_15_fps_keeping_whole_frames_of_the_render(fps, expected):
    assert preview_fps(fps) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1920, 1080), (512, 288)), ((1280, 720), (512, 288)), ((1080, 1920), (288, 512)),
     ((320, 240), (320, 240)), ((3840, 16), (512, 2))],
)  # fmt: skip
def test_a_preview_fits_in_512_pixels_with_even_sides_and_is_never_enlarged(size, expected):
    look = preview_look(movie({"duration": 1}, width=size[0], height=size[1], fps=30))
    assert (look.width, look.height) == expected


def test_the_storyboard_has_each_scene_at_its_middle_and_each_transition_at_its_midpoint():
    script = movie(
        {"duration": 2, "transition": {"type": "fade", "duration": 1}},
        {"duration": 3},
        {"duration": 1},
    )
    moments = [(m.scene, m.kind, m.time) for m in storyboard_moments(script)]
    # Scene 2 starts at 1 s (the fade overlaps the two scenes), scene 3 at 4 s.
    assert moments == [(0, SCENE, 1.0), (0, TRANSITION, 1.5), (1, SCENE, 2.5), (2, SCENE, 4.5)]


# --- drawing ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def red_then_blue_clip(media_dir: Path) -> str:  # noqa: F811
    """A 2 s video, red for its first second and blue for its second."""
    make(
        media_dir / "red-blue.mp4",
        "-filter_complex",
        "color=c=0xFF0000:s=160x120:r=15:d=1[a];color=c=0x0000FF:s=160x120:r=15:d=1[b];"
        "[a][b]concat=n=2:v=1:a=0",
        *("-c:v", "libx264", "-preset", "ultrafast", "-g", "30"),
    )
    return "red-blue.mp4"


def test_each_still_shows_what_the_render_shows_at_its_moment(
    server: MediaServer,  # noqa: F811
    red_then_blue_clip: str,
    tmp_path: Path,
):
    script = movie(
        {
            "duration": 3,
            "background": {"type": "image", "src": server.url("green.png"), "fit": "cover"},
            "elements": [
                # At the scene's middle (1.5 s) this video is 1 s in: blue, not red.
                {"type": "video", "src": server.url(red_then_blue_clip), "x": 0, "y": 0,
                 "width": 160, "height": 120, "fit": "fill", "start": 0.5, "muted": True},
                # Ended by then, and not looping: the background shows where it was.
                {"type": "video", "src": server.url(red_then_blue_clip), "x": 160, "y": 120,
                 "width": 160, "height": 120, "fit": "fill", "trim_end": 0.5, "muted": True},
                {"type": "text", "text": "Hi", "font_size": 40, "color": "#000000",
                 "background_color": "#FFFFFF", "position": "top-right", "start": 1.0},
            ],
            "transition": {"type": "wipeleft", "duration": 1},
        },
        {
            "duration": 2,
            "background": "#0000FF",
            "elements": [
                {"type": "video", "src": server.url(red_then_blue_clip), "x": 0, "y": 120,
                 "width": 160, "height": 120, "fit": "fill", "loop": True, "muted": True},
            ],
        },
    )  # fmt: skip
    renderer = local_renderer()
    stills, proxy, _ = preview(script, tmp_path / "preview", renderer)
    rendered = renderer.render(script, tmp_path / "render.mp4", Recorder(), tmp_path / "render")

    assert [(s.moment.kind, s.moment.time) for s in stills] == [
        (SCENE, 1.5),
        (TRANSITION, 2.5),
        (SCENE, 3.0),
    ]
    places = {
        "video": (40, 30),
        "ended video": (240, 170),
        "text box": (300, 12),
        "left of the wipe": (20, 200),
        "right of the wipe": (300, 200),
    }
    for still in stills:
        for what, (x, y) in places.items():
            in_still = pixel(still.path, x, y)
            in_render = frame_rgb(rendered.path, still.moment.time, x, y)
            assert close_to(in_still, in_render), (still.moment, what, in_still, in_render)
    middle = stills[0].path
    assert close_to(pixel(middle, 40, 30), (0, 0, 255)), "the video, seeked to 1 s"
    assert close_to(pixel(middle, 240, 170), (0, 255, 0)), "the background, not red"
    assert proxy.duration_seconds == pytest.approx(rendered.duration_seconds, abs=0.1)


def test_the_storyboard_is_handed_over_before_the_proxy_is_reported_or_answered(tmp_path: Path):
    script = movie(
        {"duration": 1, "background": "#FF0000", "transition": {"type": "fade", "duration": 0.5}},
        {"duration": 1, "background": "#0000FF"},
    )
    stills, proxy, progress = preview(script, tmp_path)

    assert [s.path.name for s in stills] == [
        "storyboard-01.jpg",
        "storyboard-02.jpg",
        "storyboard-03.jpg",
    ]
    assert close_to(pixel(stills[0].path, 10, 10), (255, 0, 0))
    assert close_to(pixel(stills[1].path, 10, 10), (128, 0, 128)), "half way through"
    assert close_to(pixel(stills[2].path, 10, 10), (0, 0, 255))
    stages = list(dict.fromkeys(stage for _, stage in progress.calls))
    # The proxy is drawn meanwhile, but its stages (a render's: those its progress
    # reports happened to see) come after the storyboard is out.
    assert stages[:2] == ["storyboard", HANDED_OVER] and stages[-1] == "encoding"
    assert set(stages[2:]) <= {"rendering_scene_1", "stitching", "rendering_scene_2", "encoding"}
    values = [value for value, stage in progress.calls if stage != HANDED_OVER]
    assert values == sorted(values) and values[-1] < 1
    assert proxy.path.stat().st_size == proxy.file_size_bytes


def test_the_proxy_is_the_whole_movie_small_slow_fast_to_encode_and_watermarked(tmp_path: Path):
    # 1280×720 at 30 fps, one colour: at 512×288 and 15 fps only the watermark differs.
    script = movie(
        {"duration": 1, "background": "#000000",
         "elements": [{"type": "text", "text": "X", "font_size": 72, "position": "top-left",
                       "color": "#FFFFFF", "background_color": "#FFFFFF"}]},
        width=1280, height=720, fps=30,
    )  # fmt: skip
    _, proxy, _ = preview(script, tmp_path)

    probe = ffprobe(proxy.path)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 512, 288)
    assert video["avg_frame_rate"] == "15/1"
    assert (audio["codec_name"], audio["sample_rate"]) == ("aac", "24000")
    assert float(probe["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
    assert (proxy.width, proxy.height, proxy.fps) == (512, 288, 15)
    # The watermark: light over the black middle of the picture.
    assert max(frame_rgb(proxy.path, 0.5, x, 144) for x in range(200, 320, 6)) > (90, 90, 90)
    assert close_to(frame_rgb(proxy.path, 0.5, 500, 280), (0, 0, 0))
    # The text box is where the render draws it, scaled by 0.4: its margin of 36 px
    # (5 % of 720) becomes 14 px.
    assert close_to(frame_rgb(proxy.path, 0.5, 20, 20), (255, 255, 255))
    assert close_to(frame_rgb(proxy.path, 0.5, 8, 8), (0, 0, 0))


def test_stills_run_at_normal_priority_the_proxy_below_them_and_a_render_below_both(
    tmp_path: Path,
):
    # An FFmpeg that notes its own niceness and what it writes, then is the real one.
    log = tmp_path / "runs.log"
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        f'#!/bin/sh\necho "$(nice) $(echo "$@" | grep -o "file:[^ ]*" | tail -1)" >> {log}\n'
        f'exec {imageio_ffmpeg.get_ffmpeg_exe()} "$@"\n'
    )
    wrapper.chmod(0o755)
    renderer = FFmpegRenderer(ffmpeg_exe=str(wrapper))
    script = movie(
        {"duration": 1, "background": "#203040", "transition": {"type": "fade", "duration": 0.5},
         "elements": [{"type": "text", "text": "One"}]},
        {"duration": 1, "background": "#402030"},
    )  # fmt: skip
    preview(script, tmp_path / "preview", renderer)
    renderer.render(script, tmp_path / "movie.mp4", Recorder(), tmp_path / "render")

    niceness = {}
    for line in log.read_text().splitlines():
        level, _, target = line.partition(" ")
        niceness[Path(target).name] = int(level)
    assert {niceness[f"storyboard-0{n}.jpg"] for n in (1, 2, 3)} == {0}
    assert niceness["proxy.mp4"] == 5
    assert niceness["movie.mp4"] == 10
    assert niceness["movie.jpg"] == 10  # its poster


def test_an_image_at_half_opacity_shows_half_its_colour_in_the_render_and_the_preview(
    server: MediaServer,  # noqa: F811
    tmp_path: Path,
):
    script = movie(
        {"duration": 1, "background": "#000000",
         "elements": [{"type": "image", "src": server.url("green.png"), "x": 0, "y": 0,
                       "width": 320, "height": 240, "fit": "fill", "opacity": 0.5}]},
    )  # fmt: skip
    renderer = local_renderer()
    stills, proxy, _ = preview(script, tmp_path / "preview", renderer)
    rendered = renderer.render(script, tmp_path / "render.mp4", Recorder(), tmp_path / "render")

    half_green = (0, 128, 0)
    assert close_to(frame_rgb(rendered.path, 0.5, 160, 120), half_green)
    assert close_to(frame_rgb(proxy.path, 0.5, 20, 20), half_green)
    assert close_to(pixel(stills[0].path, 160, 120), half_green)
