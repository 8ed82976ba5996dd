"""Benchmark a real render through the whole system against bare FFmpeg on the same graph.

    python bench/render.py [--seconds 10] [--quality high] [--width 1920 --height 1080]
                           [--smoke]

1. Makes the media with FFmpeg (a test-pattern video of the movie's size with a tone,
   a PNG) and serves them from a local HTTP server (PHANTOMFLOW_ALLOW_PRIVATE_URLS=1).
2. Starts the embedded system (`python -m phantomflow.api.cli serve`) on a fresh data
   directory, creates an account, POSTs a 1920x1080 (`--width`, `--height`) script of
   `--seconds` (two scenes joined by a fade, text, an image and a video with its
   sound), and polls the job until it completes. System time: the job's `completed_at`
   minus its `created_at` (queueing, dispatch, download, probe, render, measure,
   poster, storage, events).
3. Builds the very same FFmpeg command (`GraphBuilder`, same inputs, same filter
   graph, same encoder settings, same output) on the same media files and runs it
   alone. Bare time: that run. (The system's poster, a second short FFmpeg run on
   the finished file, has no counterpart here: it counts as system overhead.)

Prints both times and the ratio system / bare (target: at most 1.10), and where the
system's time went, from the job's own events: before FFmpeg (Submitted to the first
`rendering_*` progress), split into the dispatch (Submitted to Started: queue, hand-over
to the worker) and the sources (Started to the first frame: download and probe), the
FFmpeg run (to the `encoding` progress) and after it (to Completed: duration, poster,
storage, the Completed event with the settlement). The split is measured inside one
run, so it is less at the mercy of a machine's load than the ratio of two runs. The
last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import imageio_ffmpeg
from aiohttp import web
from harness import (
    BenchError,
    app_in_thread,
    bench_parser,
    free_port,
    loadavg,
    parse_args,
    report,
    run_main,
)

from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.adapters.render.graph import GraphBuilder
from phantomflow.adapters.render.probe import probe
from phantomflow.adapters.render.process import Deadline
from phantomflow.domain.script import MovieScript

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def make_media(folder: Path, width: int, height: int, seconds: float) -> None:
    """A clip of the movie's size with a tone (a little longer than its first scene)
    and a logo of a third of its size."""
    run = [FFMPEG, "-v", "error", "-nostdin", "-y"]
    clip = f"testsrc2=s={width}x{height}:r=30:d={seconds / 2 + 1:g}"
    subprocess.run(
        [*run, "-f", "lavfi", "-i", clip, "-f", "lavfi",
         "-i", f"sine=f=440:d={seconds / 2 + 1:g}", "-c:v", "libx264", "-preset", "veryfast",
         "-c:a", "aac", "-shortest", str(folder / "clip.mp4")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "-f", "lavfi", "-i", f"testsrc=s={width // 3}x{height // 3}", "-frames:v", "1",
         str(folder / "logo.png")],
        check=True,
    )  # fmt: skip


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """The media of `folder` over HTTP on 127.0.0.1, for as long as the block."""

    async def handle(request: web.Request) -> web.Response:
        path = folder / request.match_info["name"]
        kind = "video/mp4" if path.suffix == ".mp4" else "image/png"
        return web.Response(body=path.read_bytes(), content_type=kind)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    with app_in_thread(app) as base:
        yield base


def script_for(base: str, seconds: float, quality: str, width: int, height: int) -> dict:
    """Two scenes joined by a 1 s fade; positions and sizes are laid out for 1920x1080
    and scaled to `width` x `height`."""
    half = seconds / 2 + 0.5

    def px(value: int) -> int:
        return max(1, round(value * width / 1920))

    return {
        "width": width,
        "height": height,
        "fps": 30,
        "quality": quality,
        "scenes": [
            {
                "duration": half,
                "background": "#203040",
                "elements": [
                    {"type": "video", "src": f"{base}/clip.mp4", "x": px(80), "y": px(80),
                     "width": px(960), "height": px(540), "fit": "contain"},
                    {"type": "text", "text": "PhantomFlow benchmark", "font_size": px(72),
                     "position": "bottom", "background_color": "#00000080", "fade_in": 0.5},
                ],
                "transition": {"type": "fade", "duration": 1},
            },
            {
                "duration": half,
                "background": "#402030",
                "elements": [
                    {"type": "image", "src": f"{base}/logo.png", "x": px(1100), "y": px(200),
                     "width": px(640), "height": px(360), "fit": "cover"},
                    {"type": "text", "text": "Scene two", "font_size": px(96),
                     "position": "top-left", "font_weight": "bold"},
                ],
            },
        ],
    }  # fmt: skip


def call(method: str, url: str, key: str | None, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None, method=method
    )
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("x-api-key", key)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stages(events: list[dict]) -> dict[str, float]:
    """Seconds before FFmpeg (the dispatch, then the sources), in the FFmpeg run and
    after it, from a job's events (their times are to the millisecond)."""
    submitted = instant(events[0]["at"])
    started = next(instant(e["at"]) for e in events if e["type"] == "Started")
    progress = [e for e in events if e["type"] == "ProgressReported"]
    frames = next(instant(e["at"]) for e in progress if e["data"]["stage"] != "downloading")
    encoding = next(instant(e["at"]) for e in progress if e["data"]["stage"] == "encoding")
    completed = next(instant(e["at"]) for e in events if e["type"] == "Completed")
    return {
        "before_ffmpeg": (frames - submitted).total_seconds(),
        "dispatch": (started - submitted).total_seconds(),
        "download_and_probe": (frames - started).total_seconds(),
        "ffmpeg_run": (encoding - frames).total_seconds(),
        "after_ffmpeg": (completed - encoding).total_seconds(),
    }


def through_the_system(work: Path, script: dict) -> tuple[float, dict, dict[str, float]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "PHANTOMFLOW_DATA_DIR": str(work / "data"),
        "PHANTOMFLOW_ALLOW_PRIVATE_URLS": "1",
    }
    cli = [sys.executable, "-m", "phantomflow.api.cli"]
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                call("GET", f"{base}/api/render/schema", None)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        account = json.loads(
            subprocess.run(
                [*cli, "accounts", "create", "--plan", "enterprise", "--credits", "1000"],
                env=env, capture_output=True, check=True,
            ).stdout
        )  # fmt: skip
        key = account["api_key"]
        job_id = call("POST", f"{base}/api/render", key, script)["job_id"]
        while True:
            job = call("GET", f"{base}/api/jobs/{job_id}", key)
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.2)  # within the enterprise plan's 600 requests a minute
        if job["status"] != "completed":
            raise BenchError(f"render failed: {job['error']}")
        # The job's own timestamps: submitted (the POST) to Completed recorded.
        elapsed = (instant(job["completed_at"]) - instant(job["created_at"])).total_seconds()
        events = call("GET", f"{base}/api/jobs/{job_id}/events", key)["events"]
        return elapsed, job, stages(events)
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def bare_ffmpeg(work: Path, media: Path, base: str, script: dict) -> float:
    movie = MovieScript.from_dict(script)
    renderer = FFmpegRenderer()
    deadline = Deadline(600)
    infos = {}
    for source in movie.media_sources():
        path = media / source.url.rsplit("/", 1)[1]
        infos[source.url] = probe(renderer.ffmpeg_exe, path, source.path, deadline)
    fonts = {key: path.resolve() for key, path in renderer._fonts(movie, work).items()}
    work.mkdir(parents=True, exist_ok=True)
    plan = GraphBuilder(movie, fonts, infos, work).build(work / "bare.mp4")
    args = plan.compile(cmd=FFMPEG)
    started = time.monotonic()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def run(options: argparse.Namespace) -> dict[str, Any]:
    load_at_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench-render-") as scratch:
        work = Path(scratch)
        media = work / "media"
        media.mkdir()
        make_media(media, options.width, options.height, options.seconds)
        with serve(media) as base:
            script = script_for(
                base, options.seconds, options.quality, options.width, options.height
            )
            system_seconds, job, split = through_the_system(work, script)
            bare_seconds = bare_ffmpeg(work / "bare", media, base, script)
    return {
        "smoke": options.smoke,
        "size": f"{options.width}x{options.height}",
        "quality": options.quality,
        "loadavg_at_start": load_at_start,
        "video_seconds": job["duration_seconds"],
        "file_size_bytes": job["file_size_bytes"],
        "system_seconds": round(system_seconds, 3),
        "bare_seconds": round(bare_seconds, 3),
        "ratio": round(system_seconds / bare_seconds, 3),
        **{f"{name}_seconds": round(value, 3) for name, value in split.items()},
    }


def print_report(f: dict[str, Any]) -> None:
    report(
        [
            f"video:         {f['video_seconds']:.2f} s {f['size']} {f['quality']}"
            f" (load {f['loadavg_at_start']} at start)",
            f"system:        {f['system_seconds']:.2f} s (job created_at to completed_at)",
            f"bare ffmpeg:   {f['bare_seconds']:.2f} s (the same command alone)",
            f"ratio:         {f['ratio']:.3f} (target <= 1.10)",
            f"system split:  {f['before_ffmpeg_seconds']:.3f} s before FFmpeg"
            f" ({f['dispatch_seconds']:.3f} s dispatch,"
            f" {f['download_and_probe_seconds']:.3f} s download and probe),"
            f" {f['ffmpeg_run_seconds']:.3f} s FFmpeg run,"
            f" {f['after_ffmpeg_seconds']:.3f} s after",
        ],
        f,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--quality", default="high", choices=["low", "medium", "high"])
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    options = parse_args(parser, argv, seconds=2, quality="low", width=320, height=180)
    return run_main("bench/render.py", lambda: print_report(run(options)))


if __name__ == "__main__":
    sys.exit(main())
