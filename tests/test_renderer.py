"""The FFmpeg renderer with real FFmpeg: tiny videos, checked from the files it writes."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import imageio_ffmpeg
import pytest

from phantomflow.adapters.render import FFmpegRenderer, RenderFailed, RenderResult
from phantomflow.adapters.render.probe import measure_duration
from phantomflow.adapters.render.renderer import FONT_FILES, FONTS_DIR
from phantomflow.domain.script import MovieScript
from tests.media import Recorder, ffprobe, frame_rgb, keyframe_times

pytestmark = pytest.mark.ffmpeg

WIDTH, HEIGHT = 320, 240

AWKWARD_TEXT = "He said \"hi\": a,b; c=d [x] \\ \\n 'q' %{pts} %{localtime}\nsecond line 😀 ✓"


def script(*scenes: dict) -> MovieScript:
    return MovieScript.from_dict(
        {"width": WIDTH, "height": HEIGHT, "fps": 15, "quality": "low", "scenes": list(scenes)}
    )


RED_THEN_BLUE = script(
    {"duration": 1, "background": "#FF0000", "elements": [{"text": "One", "font_size": 20}]},
    {"duration": 1, "background": "#00F", "elements": []},
)


def render(
    movie: MovieScript, work_dir: Path, renderer: FFmpegRenderer | None = None
) -> tuple[RenderResult, Recorder]:
    work_dir.mkdir(parents=True, exist_ok=True)
    progress = Recorder()
    result = (renderer or FFmpegRenderer()).render(
        movie, work_dir / "output.mp4", progress, work_dir
    )
    return result, progress


def fake_ffmpeg(tmp_path: Path, body: str) -> str:
    """An executable that exists but is not the FFmpeg the renderer expects."""
    exe = tmp_path / "fake-ffmpeg"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def differs(a: tuple[int, int, int], b: tuple[int, int, int], by: int = 60) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) >= by


def close_to(actual: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return not differs(actual, expected, by=40)


def test_two_scenes_become_one_h264_and_aac_mp4_of_the_scripts_size_and_length(tmp_path: Path):
    # Spaces, a colon and a quote in the path: filter arguments must be escaped properly.
    result, _ = render(RED_THEN_BLUE, tmp_path / "work dir: it's")

    probe = ffprobe(result.path)
    kinds = sorted(s["codec_type"] for s in probe["streams"])
    assert kinds == ["audio", "video"]
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (WIDTH, HEIGHT)
    # A script without sound still gets a (silent) AAC track: every output has one shape.
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "48000", 2)
    assert "mp4" in probe["format"]["format_name"]
    assert float(probe["format"]["duration"]) == pytest.approx(2.0, abs=0.1)
    assert result.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert result.file_size_bytes == result.path.stat().st_size > 0


def test_the_mp4_starts_with_its_index_so_players_can_stream_it(tmp_path: Path):
    result, _ = render(RED_THEN_BLUE, tmp_path)

    head = result.path.read_bytes()[:4096]
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head


def test_a_jpeg_poster_frame_is_written_beside_the_video(tmp_path: Path):
    result, _ = render(RED_THEN_BLUE, tmp_path)

    assert result.poster_path == result.path.with_suffix(".jpg")
    assert result.poster_path.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG
    stream = ffprobe(result.poster_path)["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", WIDTH, HEIGHT)
    # Taken 1 s in: the second scene, blue.
    assert close_to(frame_rgb(result.poster_path, 0, 10, HEIGHT - 10), (0, 0, 255))


def test_the_video_has_a_keyframe_where_the_poster_is_taken(tmp_path: Path):
    # One 3 s scene: nothing else (no scene cut) would put a keyframe at 1 s.
    result, _ = render(script({"duration": 3, "background": "#00FF00", "elements": []}), tmp_path)

    assert 1.0 in keyframe_times(result.path)
    assert close_to(frame_rgb(result.poster_path, 0, 10, 10), (0, 255, 0))


def test_each_scene_shows_its_background_colour_in_turn(tmp_path: Path):
    result, _ = render(RED_THEN_BLUE, tmp_path)

    corner = (10, HEIGHT - 10)  # away from the text in the middle
    assert close_to(frame_rgb(result.path, 0.5, *corner), (255, 0, 0))
    assert close_to(frame_rgb(result.path, 1.5, *corner), (0, 0, 255))


def test_scenes_that_are_exactly_alike_are_each_rendered(tmp_path: Path):
    # ffmpeg-python merges identical nodes; two equal scenes must still be two scenes.
    same = {"duration": 1, "background": "#00FF00", "elements": [{"text": "Hi", "font_size": 20}]}
    result, _ = render(script(same, dict(same)), tmp_path)

    assert result.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert close_to(frame_rgb(result.path, 1.5, 10, HEIGHT - 10), (0, 255, 0))


def test_progress_only_rises_stays_below_one_and_names_the_stages_in_order(tmp_path: Path):
    _, progress = render(RED_THEN_BLUE, tmp_path)

    values = [value for value, _ in progress.calls]
    assert values == sorted(values)
    assert values[0] >= 0 and values[-1] < 1
    stages = list(dict.fromkeys(stage for _, stage in progress.calls))
    assert stages == ["rendering_scene_1", "rendering_scene_2", "encoding"]


def test_text_full_of_filter_syntax_is_drawn_and_changes_the_picture(tmp_path: Path):
    background = {"duration": 1, "background": "#000000"}
    with_text = script(
        {**background, "elements": [{"text": AWKWARD_TEXT, "font_size": 40, "color": "#FFF"}]}
    )
    plain = script({**background, "elements": []})

    drawn, _ = render(with_text, tmp_path / "text")
    blank, _ = render(plain, tmp_path / "blank")

    # The two lines of text straddle the centre: look along a row through each of them.
    points = [
        (x, y) for y in (HEIGHT // 2 - 20, HEIGHT // 2 + 20) for x in range(20, WIDTH - 20, 6)
    ]
    assert any(
        differs(frame_rgb(drawn.path, 0.5, *p), frame_rgb(blank.path, 0.5, *p)) for p in points
    ), "no text pixels found near the centre"
    # The text file holds the text as sent, with line breaks added only to wrap it.
    drawn_text = (tmp_path / "text" / "text_001.txt").read_text("utf-8")
    assert drawn_text.replace("\n", " ") == AWKWARD_TEXT.replace("\n", " ")


def test_an_ffmpeg_that_fails_raises_render_failed_with_its_meaningful_line(tmp_path: Path):
    # Shaped like FFmpeg 9: a thread's exit notice, the cause, then how it propagated.
    noisy = fake_ffmpeg(
        tmp_path,
        "echo '[vf#0:0 @ 0x55ba] Task finished with error code: -22 (Invalid argument)' >&2\n"
        "echo '[in#0 @ 0x5581f0] Error opening input: Invalid data found when processing input' >&2\n"
        "echo 'Error opening input files: Invalid data found when processing input' >&2\n"
        "echo 'Conversion failed!' >&2\n"
        "exit 1",
    )

    with pytest.raises(RenderFailed) as failure:
        render(RED_THEN_BLUE, tmp_path / "work", FFmpegRenderer(ffmpeg_exe=noisy))

    assert failure.value.message == (
        "Error opening input: Invalid data found when processing input"
    )


def test_an_ffmpeg_that_fails_silently_still_gets_a_one_line_message(tmp_path: Path):
    with pytest.raises(RenderFailed) as failure:
        render(RED_THEN_BLUE, tmp_path, FFmpegRenderer(ffmpeg_exe=fake_ffmpeg(tmp_path, "exit 3")))

    assert failure.value.message == "ffmpeg exited with status 3"


def test_a_real_ffmpeg_error_is_reported_by_its_cause_on_one_line(tmp_path: Path):
    odd_width = MovieScript.from_dict({**RED_THEN_BLUE.to_dict(), "width": 321})

    with pytest.raises(RenderFailed) as failure:
        render(odd_width, tmp_path)

    assert failure.value.message == "width not divisible by 2 (321x240)"


@pytest.mark.parametrize("font", ["missing.ttf", "not-a-font.ttf"])
def test_a_missing_or_broken_font_fails_the_render_instead_of_falling_back(
    tmp_path: Path, font: str
):
    # This FFmpeg has fontconfig: left to itself it would quietly use another font.
    (tmp_path / "not-a-font.ttf").write_text("hello")

    with pytest.raises(RenderFailed) as failure:
        render(RED_THEN_BLUE, tmp_path / "work", FFmpegRenderer(font_path=tmp_path / font))

    assert font in failure.value.message and "\n" not in failure.value.message


def test_a_render_that_overruns_its_timeout_is_killed(tmp_path: Path):
    stuck = fake_ffmpeg(tmp_path, "exec sleep 30")
    renderer = FFmpegRenderer(ffmpeg_exe=stuck, timeout_seconds=0.5)

    started = time.monotonic()
    with pytest.raises(RenderFailed) as failure:
        render(RED_THEN_BLUE, tmp_path / "work", renderer)

    assert failure.value.message == "render timed out after 0.5 s"
    assert time.monotonic() - started < 5


def test_an_ffmpeg_that_stops_making_progress_is_killed_and_run_again(tmp_path: Path):
    # The first run hangs silently (as FFmpeg 9 sometimes deadlocks); the retry works.
    marker = tmp_path / "ran-once"
    real = imageio_ffmpeg.get_ffmpeg_exe()
    flaky = fake_ffmpeg(
        tmp_path,
        f'if [ ! -e "{marker}" ]; then touch "{marker}"; exec sleep 30; fi\nexec "{real}" "$@"',
    )
    renderer = FFmpegRenderer(ffmpeg_exe=flaky, stall_seconds=1)

    started = time.monotonic()
    result, _ = render(RED_THEN_BLUE, tmp_path / "work", renderer)

    assert marker.exists() and result.file_size_bytes > 0
    assert time.monotonic() - started < 15


def test_an_ffmpeg_that_repeats_the_same_progress_is_stalled_too(tmp_path: Path):
    # What a deadlocked FFmpeg 9 really does: its main thread keeps printing the same
    # progress block every -stats_period while nothing moves.
    marker = tmp_path / "ran-once"
    real = imageio_ffmpeg.get_ffmpeg_exe()
    block = r"frame=12\nout_time_us=400000\ntotal_size=4096\nprogress=continue\n"
    stuck = fake_ffmpeg(
        tmp_path,
        f'if [ ! -e "{marker}" ]; then touch "{marker}"\n'
        f"  while true; do printf '{block}'; sleep 0.1; done\nfi\n"
        f'exec "{real}" "$@"',
    )
    renderer = FFmpegRenderer(ffmpeg_exe=stuck, stall_seconds=1)

    started = time.monotonic()
    result, _ = render(RED_THEN_BLUE, tmp_path / "work", renderer)

    assert marker.exists() and result.file_size_bytes > 0
    assert time.monotonic() - started < 15


def test_an_ffmpeg_that_never_makes_progress_fails_the_render(tmp_path: Path):
    renderer = FFmpegRenderer(ffmpeg_exe=fake_ffmpeg(tmp_path, "exec sleep 30"), stall_seconds=0.5)
    with pytest.raises(RenderFailed) as failure:
        render(RED_THEN_BLUE, tmp_path / "work", renderer)
    assert "stopped making progress" in failure.value.message


def ffmpeg_processes_writing(output: Path) -> list[int]:
    """Pids of live processes whose command line names `output` (zombies have none)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if f"file:{output}".encode() in command.split(b"\0"):
            found.append(int(proc.name))
    return found


def test_an_exception_from_the_progress_callback_stops_the_render(tmp_path: Path):
    class Abandoned(Exception):
        pass

    output = (tmp_path / "output.mp4").resolve()
    running_when_abandoned: list[int] = []

    def give_up(progress: float, stage: str) -> None:
        if stage == "rendering_scene_2":
            running_when_abandoned.extend(ffmpeg_processes_writing(output))
            raise Abandoned

    # Scene 2 starts after one second of output, within FFmpeg's first progress report
    # (~0.3 s), and is far too heavy to be finished by then: 720p for five minutes takes
    # FFmpeg tens of seconds here. So the callback always raises while FFmpeg runs.
    long_script = MovieScript.from_dict(
        {
            "width": 1280,
            "height": 720,
            "fps": 30,
            "quality": "low",
            "scenes": [
                {"duration": 1, "background": "#FF0000"},
                {"duration": 300, "background": "#0000FF"},
            ],
        }
    )
    with pytest.raises(Abandoned):
        FFmpegRenderer().render(long_script, output, give_up, tmp_path)

    # FFmpeg was running when the callback raised, and is gone now (killed and reaped).
    assert len(running_when_abandoned) == 1
    assert not Path(f"/proc/{running_when_abandoned[0]}").exists()
    # Killed mid-run: no finished MP4 (its index is written last).
    assert not output.exists() or b"moov" not in output.read_bytes()


def test_measure_duration_agrees_with_ffprobe(tmp_path: Path):
    uneven = script({"duration": 1.4, "background": "#123456", "elements": []})
    result, _ = render(uneven, tmp_path)

    expected = float(ffprobe(result.path)["format"]["duration"])
    assert measure_duration(result.path) == pytest.approx(expected, abs=0.05)
    assert result.duration_seconds == pytest.approx(expected, abs=0.05)


def test_the_bundled_fonts_ship_with_their_licence():
    assert {path.name for path in FONTS_DIR.glob("*.ttf")} == set(FONT_FILES.values())
    for name in FONT_FILES.values():
        assert (FONTS_DIR / name).read_bytes()[:4] == b"\x00\x01\x00\x00"
    assert "Bitstream" in (FONTS_DIR / "LICENSE-DejaVu.txt").read_text()
    assert os.access(FONTS_DIR / "DejaVuSans.ttf", os.R_OK)
