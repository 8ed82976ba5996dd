"""Rendering every element from real media, fetched safely.

The media are made here with FFmpeg (a test pattern, a solid image, tones) and served
by a local aiohttp server in this process; the renderer is allowed to reach it only
because these tests set allow_private. Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import pytest
from aiohttp import web

from phantomflow.adapters.media import FetchLimits, MediaFetcher
from phantomflow.adapters.render import FFmpegRenderer, RenderFailed, RenderResult
from phantomflow.domain.script import MovieScript
from tests.media import Recorder, ffprobe, frame_rgb
from tests.servers.http import app_in_thread

pytestmark = pytest.mark.ffmpeg

WIDTH, HEIGHT = 320, 240
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make(target: Path, *args: str) -> Path:
    subprocess.run(
        [FFMPEG, "-v", "error", "-nostdin", "-y", *args, str(target)], check=True, timeout=60
    )
    return target


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    make(folder / "green.png", "-f", "lavfi", "-i", "color=c=0x00FF00:s=64x48", "-frames:v", "1")
    make(
        folder / "clip.mp4",
        *("-f", "lavfi", "-i", "color=c=0xFFFF00:s=160x120:r=15:d=2"),
        *("-f", "lavfi", "-i", "sine=f=440:d=2"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"),
    )
    make(
        folder / "silent.mp4",
        *("-f", "lavfi", "-i", "color=c=0x00FFFF:s=160x120:r=15:d=1"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-an"),
    )
    make(folder / "tone.wav", "-f", "lavfi", "-i", "sine=f=660:d=3")
    (folder / "notes.txt").write_text("not media at all\n")
    # An HLS playlist that points FFmpeg at a local file, dressed up as a video.
    (folder / "playlist.mp4").write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    )
    return folder


CONTENT_TYPES = {".png": "image/png", ".mp4": "video/mp4", ".wav": "audio/wav"}


@dataclass
class MediaServer:
    base: str
    requests: list[str]

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture(scope="module")
def server(media_dir: Path) -> Iterator[MediaServer]:
    """An HTTP server on 127.0.0.1 in a thread of its own, serving media_dir."""
    requests: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        requests.append(name)
        if name == "missing":
            raise web.HTTPNotFound()
        if name == "huge":
            response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            await response.prepare(request)
            for _ in range(64):
                await response.write(b"\0" * 65536)
            return response
        if name == "slow":
            response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            await response.prepare(request)
            for _ in range(100):
                await response.write(b"\0" * 16)
                await asyncio.sleep(0.1)
            return response
        if name.startswith("as-video-"):
            body = (media_dir / name.removeprefix("as-video-")).read_bytes()
            return web.Response(body=body, content_type="video/mp4")
        path = media_dir / name
        return web.Response(
            body=path.read_bytes(),
            content_type=CONTENT_TYPES.get(path.suffix, "text/plain"),
        )

    app = web.Application()
    app.router.add_get("/{name}", serve)
    with app_in_thread(app) as base:
        yield MediaServer(base, requests)


def local_renderer(**limits: float) -> FFmpegRenderer:
    # A short stall limit: FFmpeg 9 now and then deadlocks on these graphs (see
    # adapters/render/process.py STALL_SECONDS); the retry should cost seconds, not minutes.
    return FFmpegRenderer(
        stall_seconds=4,
        fetcher=MediaFetcher(allow_private=True, limits=FetchLimits(**limits)),
    )


def render(
    script: dict, work: Path, renderer: FFmpegRenderer | None = None
) -> tuple[RenderResult, Recorder]:
    work.mkdir(parents=True, exist_ok=True)
    progress = Recorder()
    movie = MovieScript.from_dict(
        {"width": WIDTH, "height": HEIGHT, "fps": 15, "quality": "low", **script}
    )
    result = (renderer or local_renderer()).render(movie, work / "out.mp4", progress, work)
    return result, progress


def close_to(actual: tuple[int, int, int], expected: tuple[int, int, int], by: int = 45) -> bool:
    return max(abs(a - e) for a, e in zip(actual, expected, strict=True)) < by


def mean_volume_db(path: Path, start: float, length: float) -> float:
    done = subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-ss", f"{start}", "-t", f"{length}", "-i", str(path),
         "-map", "0:a:0", "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    line = next(line for line in done.stderr.splitlines() if "mean_volume" in line)
    return float(line.split("mean_volume:")[1].split("dB")[0])


def test_a_script_with_every_kind_of_element_renders_each_where_and_when_it_says(
    server: MediaServer, tmp_path: Path
):
    script = {
        "scenes": [
            {
                "duration": 1.5,
                "background": {"type": "image", "src": server.url("green.png"), "fit": "cover"},
                "elements": [
                    # Yellow video, top-left quarter, with its 440 Hz sound.
                    {"type": "video", "src": server.url("clip.mp4"), "x": 0, "y": 0,
                     "width": 160, "height": 120, "fit": "fill", "volume": 1},
                    # The green image again, bottom right, from 0.5 s, half transparent.
                    {"type": "text", "text": "Hi", "font_size": 30, "color": "#000000",
                     "background_color": "#FFFFFF", "position": "bottom-right", "start": 0.5},
                ],
                "transition": {"type": "fade", "duration": 0.5},
            },
            {
                "duration": 1,
                "background": "#0000FF",
                "elements": [
                    {"type": "image", "src": server.url("green.png"), "x": 0, "y": 0,
                     "width": 100, "height": 100, "fit": "fill", "opacity": 1},
                ],
            },
        ],
        "soundtrack": {"src": server.url("tone.wav"), "volume": 0.5},
    }  # fmt: skip

    result, progress = render(script, tmp_path)

    probe = ffprobe(result.path)
    codecs = sorted((s["codec_type"], s["codec_name"]) for s in probe["streams"])
    assert codecs == [("audio", "aac"), ("video", "h264")]
    # 1.5 s + 1 s, overlapping by the 0.5 s transition.
    assert result.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert close_to(frame_rgb(result.path, 0.3, 40, 30), (255, 255, 0)), "video, top left"
    assert close_to(frame_rgb(result.path, 0.3, 300, 20), (0, 255, 0)), "image background"
    assert close_to(frame_rgb(result.path, 1.8, 50, 50), (0, 255, 0)), "image element"
    assert close_to(frame_rgb(result.path, 1.8, 300, 200), (0, 0, 255)), "scene 2 colour"
    # The text box (white) shows in the bottom-right corner once the text has started.
    assert not close_to(frame_rgb(result.path, 0.2, 290, 210), (255, 255, 255))
    corner = [frame_rgb(result.path, 1.0, x, 205) for x in range(240, 300, 4)]
    assert any(close_to(pixel, (255, 255, 255)) for pixel in corner), corner
    # Sound throughout: the clip's tone and the soundtrack, mixed.
    assert mean_volume_db(result.path, 0.1, 1.5) > -30
    # Stages in order; progress only rises.
    stages = list(dict.fromkeys(stage for _, stage in progress.calls))
    assert stages[0] == "downloading" and stages[-1] == "encoding"
    assert "rendering_scene_1" in stages and "rendering_scene_2" in stages
    values = [value for value, _ in progress.calls]
    assert values == sorted(values) and values[-1] < 1
    assert result.poster_path is not None and result.poster_path.stat().st_size > 0


def test_a_looping_trimmed_video_repeats_its_trimmed_part(server: MediaServer, tmp_path: Path):
    script = {
        "scenes": [
            {
                "duration": 2,
                "background": "#000000",
                "elements": [
                    {"type": "video", "src": server.url("clip.mp4"), "trim_start": 0.5,
                     "trim_end": 1.0, "loop": True, "muted": True, "fit": "fill"},
                ],
            }
        ]
    }  # fmt: skip

    result, _ = render(script, tmp_path)

    # Without the loop the 0.5 s clip would end and black would show at 1.5 s.
    assert close_to(frame_rgb(result.path, 1.5, 160, 120), (255, 255, 0))
    assert mean_volume_db(result.path, 0, 2) < -80  # muted: silence only


def test_a_clip_without_a_sound_track_plays_silently_without_being_muted(
    server: MediaServer, tmp_path: Path
):
    script = {
        "scenes": [
            {
                "duration": 1,
                "background": "#000000",
                "elements": [{"type": "video", "src": server.url("silent.mp4"), "fit": "fill"}],
            }
        ]
    }

    result, _ = render(script, tmp_path)

    assert close_to(frame_rgb(result.path, 0.5, 160, 120), (0, 255, 255))
    assert mean_volume_db(result.path, 0, 1) < -80


def test_without_the_private_url_setting_a_loopback_source_is_refused(
    server: MediaServer, tmp_path: Path
):
    script = {"scenes": [{"duration": 1, "background": {"type": "image", "src": server.url("green.png")}}]}  # fmt: skip
    before = len(server.requests)

    with pytest.raises(RenderFailed) as failure:
        render(script, tmp_path, FFmpegRenderer(fetcher=MediaFetcher()))

    assert failure.value.message.startswith("scenes.0.background.src: ")
    assert "not a public address" in failure.value.message
    assert len(server.requests) == before, "the server must never have been contacted"


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("missing", "image", "the server answered HTTP 404"),
        ("notes.txt", "image", "expected image (image/*), the server sent Content-Type text/plain"),
        ("tone.wav", "video", "expected video (video/*), the server sent Content-Type audio/wav"),
        ("huge", "video", "larger than the limit of 1 MiB"),
        ("playlist.mp4", "video", "not a media file FFmpeg can read"),
        ("as-video-notes.txt", "video", "not a media file FFmpeg can read"),
        ("as-video-tone.wav", "video", "the file has no picture"),
    ],
)
def test_a_source_that_is_not_the_media_it_claims_fails_the_render_with_a_reason(
    server: MediaServer, tmp_path: Path, name: str, kind: str, expected: str
):
    element = {"type": kind, "src": server.url(name)}
    script = {"scenes": [{"duration": 1, "elements": [element]}]}

    with pytest.raises(RenderFailed) as failure:
        render(script, tmp_path, local_renderer(max_bytes=1024 * 1024))

    assert failure.value.message.startswith("scenes.0.elements.0.src: ")
    assert expected in failure.value.message
    assert "\n" not in failure.value.message and str(tmp_path) not in failure.value.message


def test_a_source_too_slow_to_arrive_fails_within_the_time_limit(
    server: MediaServer, tmp_path: Path
):
    script = {"scenes": [{"duration": 1, "elements": [{"type": "video", "src": server.url("slow")}]}]}  # fmt: skip

    started = time.monotonic()
    with pytest.raises(RenderFailed) as failure:
        render(script, tmp_path, local_renderer(timeout_seconds=1))

    assert "did not finish within 1 s" in failure.value.message
    assert time.monotonic() - started < 5


def test_ffmpeg_is_never_given_a_url_or_the_clients_text(server: MediaServer, tmp_path: Path):
    evil = "x'; [in] drawtext=text=pwned:fontsize=99 [out]; %{localtime} \\: $(id)"
    script = MovieScript.from_dict(
        {
            "width": WIDTH, "height": HEIGHT, "fps": 15, "quality": "low",
            "scenes": [{"duration": 1, "background": {"type": "image", "src": server.url("green.png")},
                        "elements": [{"type": "text", "text": evil}]}],
        }
    )  # fmt: skip
    seen: list[list[str]] = []
    renderer = local_renderer()
    real_run = subprocess.Popen

    def spy(args, *rest, **kwargs):
        seen.append(list(args))
        return real_run(args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", spy)
        renderer.render(script, tmp_path / "out.mp4", lambda *_, **__: None, tmp_path)

    arguments = " ".join(arg for args in seen for arg in args)
    assert "http://" not in arguments and "pwned" not in arguments
    assert "-protocol_whitelist file" in arguments and "-format_whitelist" in arguments
