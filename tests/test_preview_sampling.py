"""Decoding each video of a preview once (adapters/render/sampling.py): the frames its
stills show, and the small copy its proxy reads, checked against the render."""

from __future__ import annotations

import concurrent.futures
import os
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from phantomflow.adapters.render import sampling
from phantomflow.adapters.render.look import Look
from phantomflow.adapters.render.preview import PREVIEW_DECODING
from phantomflow.adapters.render.probe import probe
from phantomflow.adapters.render.process import Deadline
from phantomflow.adapters.render.sampling import Decoding, copy_fits, decode_once, image_files
from tests.media import Recorder, frame_rgb

# The media fixtures (`media_dir`, `server`) are test_media's.
from tests.test_media import (  # noqa: F401
    MediaServer,
    close_to,
    local_renderer,
    make,
    media_dir,
    server,
)
from tests.test_preview_render import movie, pixel, preview, red_then_blue_clip  # noqa: F401

pytestmark = pytest.mark.ffmpeg

RED, BLUE = (255, 0, 0), (0, 0, 255)


def test_one_decoding_gives_the_frame_a_seek_gives_for_each_instant(
    media_dir: Path,  # noqa: F811
    red_then_blue_clip: str,  # noqa: F811
    tmp_path: Path,
):
    ffmpeg_exe = imageio_ffmpeg.get_ffmpeg_exe()
    info = probe(ffmpeg_exe, media_dir / red_then_blue_clip, "clip", Deadline(30))
    look = Look(160, 120, 15, 1.0)

    decoded = decode_once(
        ffmpeg_exe, info, [0.2, 0.5, 0.51, 1.5, 9.0], look, {}, tmp_path, Deadline(30)
    )

    images = decoded.images
    assert set(images) == {0.2, 0.5, 0.51, 1.5}, "nothing past the video's end"
    same = images[0.5].read_bytes() == images[0.51].read_bytes()
    assert same, "two instants between the same frames show the same frame"
    with Image.open(images[0.2]) as image:
        assert image.size == (160, 120)
    assert close_to(pixel(images[0.2], 80, 60), RED)
    assert close_to(pixel(images[0.5], 80, 60), RED)
    assert close_to(pixel(images[1.5], 80, 60), BLUE)
    assert decoded.copy is None, "no copy asked for"


def test_an_instants_image_can_be_drawn_while_the_video_is_still_being_decoded(tmp_path: Path):
    # A moving picture (its bytes spread over its length) reaches FFmpeg through a
    # pipe: its first half now, the rest only once the first instant's image is out.
    ffmpeg_exe = imageio_ffmpeg.get_ffmpeg_exe()
    clip = make(
        tmp_path / "moving.mp4", *("-f", "lavfi", "-i", "testsrc2=s=160x120:r=15:d=2"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-movflags", "+faststart"),
    )  # fmt: skip
    info = probe(ffmpeg_exe, clip, "clip", Deadline(30))
    pipe = tmp_path / "pipe.mp4"
    os.mkfifo(pipe)
    data = clip.read_bytes()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        files = image_files(tmp_path / "decoded", [0.2, 1.5])
        run = pool.submit(
            decode_once, ffmpeg_exe, replace(info, path=pipe), files, Look(160, 120, 15, 1.0),
            {}, tmp_path / "decoded", Deadline(30),
        )  # fmt: skip
        decoding = Decoding(files, run)
        with pipe.open("wb") as writer:
            writer.write(data[: len(data) // 2])
            writer.flush()
            early = pool.submit(decoding.image, 0.2).result(timeout=20)
            assert early is not None and not decoding.run.done()
            writer.write(data[len(data) // 2 :])
        late = decoding.image(1.5)
        assert decoding.run.result(timeout=20).images == {0.2: early, 1.5: late}
    for image in (early, late):
        with Image.open(image) as picture:
            assert picture.size == (160, 120)


def test_the_copy_is_the_videos_picture_small_and_at_the_previews_rate(
    media_dir: Path,  # noqa: F811
    red_then_blue_clip: str,  # noqa: F811
    tmp_path: Path,
):
    ffmpeg_exe = imageio_ffmpeg.get_ffmpeg_exe()
    info = probe(ffmpeg_exe, media_dir / red_then_blue_clip, "clip", Deadline(30))
    look = Look(80, 60, 7.5, 0.5)

    decoded = decode_once(
        ffmpeg_exe, info, [1.0], look, PREVIEW_DECODING, tmp_path, Deadline(30), copy_until=2.0
    )

    assert decoded.copy is not None
    copy = probe(ffmpeg_exe, decoded.copy.path, "copy", Deadline(30))
    assert copy.has_video and not copy.has_audio
    assert copy.duration == pytest.approx(2.0, abs=0.2)
    assert close_to(frame_rgb(decoded.copy.path, 0.5, 40, 30), RED)
    assert close_to(frame_rgb(decoded.copy.path, 1.5, 40, 30), BLUE)


def test_a_proxy_reading_a_looped_video_from_its_copy_shows_what_the_render_shows(
    server: MediaServer,  # noqa: F811
    red_then_blue_clip: str,  # noqa: F811
    tmp_path: Path,
):
    # The 2 s clip loops behind a 3 s scene: red, blue, red again.
    script = movie(
        {"duration": 3, "background": {"type": "video", "src": server.url(red_then_blue_clip),
                                       "loop": True, "fit": "cover"}},
    )  # fmt: skip
    renderer = local_renderer()
    stills, proxy, _ = preview(script, tmp_path / "preview", renderer)
    rendered = renderer.render(script, tmp_path / "render.mp4", Recorder(), tmp_path / "render")

    copies = list((tmp_path / "preview" / "work").glob("video-*/copy.mkv"))
    assert len(copies) == 1, "the proxy read the video's small copy"
    for at, colour in [(0.5, RED), (1.5, BLUE), (2.5, RED)]:
        in_proxy = frame_rgb(proxy.path, at, 20, 20)  # clear of the watermark
        assert close_to(in_proxy, colour), (at, in_proxy)
        assert close_to(frame_rgb(rendered.path, at, 160, 120), colour)
    assert close_to(pixel(stills[0].path, 160, 120), BLUE), "the still at 1.5 s"
    assert proxy.duration_seconds == pytest.approx(rendered.duration_seconds, abs=0.1)


def test_a_video_whose_copy_would_be_too_large_is_decoded_by_the_proxy_itself(
    server: MediaServer,  # noqa: F811
    red_then_blue_clip: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    # Room for a second of the copy (15 frames of 320×240), not for the scene's 3 s.
    monkeypatch.setattr(sampling, "COPY_MAX_BYTES", 15 * 320 * 240 * 3 // 2)
    script = movie(
        {"duration": 3, "background": {"type": "video", "src": server.url(red_then_blue_clip),
                                       "loop": True, "fit": "cover"}},
    )  # fmt: skip
    _, proxy, _ = preview(script, tmp_path / "preview", local_renderer())

    assert not list((tmp_path / "preview" / "work").glob("video-*/copy.mkv"))
    for at, colour in [(0.5, RED), (1.5, BLUE), (2.5, RED)]:
        assert close_to(frame_rgb(proxy.path, at, 20, 20), colour), at


def test_the_copy_is_uncompressed_and_kept_to_a_bound():
    look = Look(512, 288, 15, 0.4)
    frame = 512 * 288 * 3 // 2
    most = sampling.COPY_MAX_BYTES // frame / 15  # seconds of whole frames that fit
    assert most > 60, "over a minute of a preview's picture"
    assert copy_fits(look, most)
    assert not copy_fits(look, most + 0.1)


def test_instants_past_the_videos_last_frame_leave_the_stills_to_seek_it(
    media_dir: Path,  # noqa: F811
    red_then_blue_clip: str,  # noqa: F811
    tmp_path: Path,
):
    # A container can say it is longer than its picture (a longer sound track): then a
    # still's instant may fall past the last frame, and the run keeps no frame at all.
    ffmpeg_exe = imageio_ffmpeg.get_ffmpeg_exe()
    info = probe(ffmpeg_exe, media_dir / red_then_blue_clip, "clip", Deadline(30))
    look = Look(160, 120, 15, 1.0)

    alone = decode_once(ffmpeg_exe, info, [9.0], look, {}, tmp_path / "a", Deadline(30))
    with_copy = decode_once(
        ffmpeg_exe, info, [9.0], look, {}, tmp_path / "b", Deadline(30), copy_until=9.0
    )

    assert (alone.images, alone.copy) == ({}, None)
    assert (with_copy.images, with_copy.copy) == ({}, None), "the proxy decodes the video"
