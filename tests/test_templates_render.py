"""The contract's template example, end to end: HTTP request, real FFmpeg render, real MP4.

The contract's script is 1920×1080 for 5 s; here it is rendered at 320×240 for 1 s at low
quality (the font scaled to fit), which changes nothing about the substitution."""

from __future__ import annotations

import copy
import subprocess
import uuid
from pathlib import Path

import imageio_ffmpeg
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.api.app import create_app
from phantomflow.api.services import Services
from phantomflow.workers.render import RenderService
from tests.media import ffprobe
from tests.test_templates_api import CONTRACT_TEMPLATE_SCRIPT, CONTRACT_VARIABLES

WIDTH, HEIGHT = 320, 240


def frame(path: Path, t: float) -> bytes:
    """Every pixel of the frame shown at `t` seconds, as RGB bytes, row by row."""
    completed = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-ss", f"{t:.3f}",
            "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )  # fmt: skip
    assert len(completed.stdout) == WIDTH * HEIGHT * 3
    return completed.stdout


def bright_columns(pixels: bytes) -> list[int]:
    """The x of every column with at least one near-white pixel (the default text colour)."""
    columns = set()
    for index in range(0, len(pixels), 3):
        if min(pixels[index : index + 3]) > 200:
            columns.add((index // 3) % WIDTH)
    return sorted(columns)


async def test_the_contract_template_example_renders_into_an_mp4_showing_the_substituted_text(
    runtime,
):
    script = copy.deepcopy(CONTRACT_TEMPLATE_SCRIPT)
    script.update(width=WIDTH, height=HEIGHT, quality="low")
    script["scenes"][0]["duration"] = 1
    script["scenes"][0]["elements"][0]["font_size"] = 32
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}

    template_id = runtime.app.create_template(
        account.account_id, "Product Demo", script, is_public=False
    ).template.ref
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        response = await client.post(
            "/api/render/template",
            json={"template_id": template_id, "variables": CONTRACT_VARIABLES},
            headers=headers,
        )
        assert response.status == 202
        job_id = uuid.UUID((await response.json())["job_id"])

    worker = RenderService(app=runtime.app, renderer=FFmpegRenderer(), storage=runtime.storage)
    assert worker.run(job_id) == "completed"
    job = runtime.app.get_job(job_id)
    assert job.script["scenes"][0]["elements"][0]["text"] == "Summer Sale"
    assert job.origin["template_id"] == template_id

    output = runtime.storage.local_path(job.output_location)
    assert output is not None
    probe = ffprobe(output)
    video = [s for s in probe["streams"] if s["codec_type"] == "video"]
    assert (video[0]["codec_name"], video[0]["width"], video[0]["height"]) == ("h264", 320, 240)
    assert abs(float(probe["format"]["duration"]) - 1.0) < 0.15

    # White text on the default black background, centred: a band of bright columns
    # around the middle, as wide as eleven characters of a 32 px font, and nothing else.
    columns = bright_columns(frame(output, 0.5))
    assert columns, "no text pixels in the rendered frame"
    left, right = columns[0], columns[-1]
    assert 180 < right - left < 240  # 209 px measured for DejaVu Sans
    assert abs((left + right) / 2 - WIDTH / 2) < 12
