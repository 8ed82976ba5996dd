"""Benchmark a real render through the whole system against bare FFmpeg on the same graph.

    python bench/render.py [--seconds 10] [--quality high]

1. Makes the media with FFmpeg (a 1920x1080 test-pattern video with a tone, a PNG) and
   serves them from a local HTTP server (PHANTOMFLOW_ALLOW_PRIVATE_URLS=1).
2. Starts the embedded system (`python -m phantomflow.api.cli serve`) on a fresh data directory,
   creates an account, POSTs a 1920x1080 script of `--seconds` (two scenes joined by
   a fade, text, an image and a video with its sound), and polls the job until it
   completes. System time: the job's `completed_at` minus its `created_at` (queueing,
   dispatch, download, probe, render, measure, poster, storage, events).
3. Builds the very same FFmpeg command (`GraphBuilder`, same inputs, same filter
   graph, same encoder settings, same output) on the same media files and runs it
   alone. Bare time: that run. (The system's poster, a second short FFmpeg run on
   the finished file, has no counterpart here: it counts as system overhead.)

Prints both times and the ratio system / bare (target: at most 1.10), and where the
system's time went, from the job's own events: before FFmpeg (Submitted to the first
`rendering_*` progress: queue, dispatch, download, probe), the FFmpeg run (to the
`encoding` progress) and after it (to Completed: duration, poster, storage, events).
The split is measured inside one run, so it is less at the mercy of a machine's load
than the ratio of two runs. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import imageio_ffmpeg
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from phantomflow.adapters.render import FFmpegRenderer  # noqa: E402
from phantomflow.adapters.render.graph import GraphBuilder  # noqa: E402
from phantomflow.adapters.render.probe import probe  # noqa: E402
from phantomflow.adapters.render.process import Deadline  # noqa: E402
from phantomflow.domain.script import MovieScript  # noqa: E402

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_media(folder: Path) -> None:
    run = [FFMPEG, "-v", "error", "-nostdin", "-y"]
    subprocess.run(
        [*run, "-f", "lavfi", "-i", "testsrc2=s=1920x1080:r=30:d=6", "-f", "lavfi",
         "-i", "sine=f=440:d=6", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac",
         "-shortest", str(folder / "clip.mp4")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [*run, "-f", "lavfi", "-i", "testsrc=s=640x360", "-frames:v", "1",
         str(folder / "logo.png")],
        check=True,
    )  # fmt: skip


def serve(folder: Path) -> str:
    async def handle(request: web.Request) -> web.Response:
        path = folder / request.match_info["name"]
        kind = "video/mp4" if path.suffix == ".mp4" else "image/png"
        return web.Response(body=path.read_bytes(), content_type=kind)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    port = free_port()
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait(10)
    return f"http://127.0.0.1:{port}"


def script_for(base: str, seconds: float, quality: str) -> dict:
    half = seconds / 2 + 0.5
    return {
        "width": 1920,
        "height": 1080,
        "fps": 30,
        "quality": quality,
        "scenes": [
            {
                "duration": half,
                "background": "#203040",
                "elements": [
                    {"type": "video", "src": f"{base}/clip.mp4", "x": 80, "y": 80,
                     "width": 960, "height": 540, "fit": "contain"},
                    {"type": "text", "text": "PhantomFlow benchmark", "font_size": 72,
                     "position": "bottom", "background_color": "#00000080", "fade_in": 0.5},
                ],
                "transition": {"type": "fade", "duration": 1},
            },
            {
                "duration": half,
                "background": "#402030",
                "elements": [
                    {"type": "image", "src": f"{base}/logo.png", "x": 1100, "y": 200,
                     "width": 640, "height": 360, "fit": "cover"},
                    {"type": "text", "text": "Scene two", "font_size": 96,
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
    """Seconds before FFmpeg, in the FFmpeg run and after it, from a job's events."""
    submitted = instant(events[0]["at"])
    progress = [e for e in events if e["type"] == "ProgressReported"]
    frames = next(instant(e["at"]) for e in progress if e["data"]["stage"] != "downloading")
    encoding = next(instant(e["at"]) for e in progress if e["data"]["stage"] == "encoding")
    completed = next(instant(e["at"]) for e in events if e["type"] == "Completed")
    return {
        "before_ffmpeg": (frames - submitted).total_seconds(),
        "ffmpeg_run": (encoding - frames).total_seconds(),
        "after_ffmpeg": (completed - encoding).total_seconds(),
    }


def through_the_system(work: Path, script: dict) -> tuple[float, dict, dict[str, float]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "PHANTOMFLOW_DATA_DIR": str(work / "data"),
        "PHANTOMFLOW_ALLOW_PRIVATE_URLS": "1",
        "PYTHONPATH": str(ROOT),
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
                [*cli, "accounts", "create", "--plan", "pro", "--credits", "1000"],
                env=env, capture_output=True, check=True,
            ).stdout
        )  # fmt: skip
        key = account["api_key"]
        started = time.monotonic()
        job_id = call("POST", f"{base}/api/render", key, script)["job_id"]
        while True:
            job = call("GET", f"{base}/api/jobs/{job_id}", key)
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.6)  # within the pro plan's 120 requests a minute
        if job["status"] != "completed":
            raise SystemExit(f"render failed: {job['error']}")
        del started
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
    fonts = {key: path.resolve() for key, path in renderer._fonts(movie).items()}
    work.mkdir(parents=True, exist_ok=True)
    plan = GraphBuilder(movie, fonts, infos, work).build(work / "bare.mp4")
    args = plan.compile(cmd=FFMPEG)
    started = time.monotonic()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--quality", default="high", choices=["low", "medium", "high"])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-render-") as scratch:
        work = Path(scratch)
        media = work / "media"
        media.mkdir()
        make_media(media)
        base = serve(media)
        script = script_for(base, options.seconds, options.quality)
        system_seconds, job, split = through_the_system(work, script)
        bare_seconds = bare_ffmpeg(work / "bare", media, base, script)
    ratio = system_seconds / bare_seconds
    print(f"video:         {job['duration_seconds']:.2f} s 1920x1080 {options.quality}")
    print(f"system:        {system_seconds:.2f} s (job created_at to completed_at)")
    print(f"bare ffmpeg:   {bare_seconds:.2f} s (the same command alone)")
    print(f"ratio:         {ratio:.3f} (target <= 1.10)")
    print(
        f"system split:  {split['before_ffmpeg']:.3f} s before FFmpeg,"
        f" {split['ffmpeg_run']:.3f} s FFmpeg run, {split['after_ffmpeg']:.3f} s after"
    )
    print(
        json.dumps(
            {
                "video_seconds": job["duration_seconds"],
                "file_size_bytes": job["file_size_bytes"],
                "system_seconds": round(system_seconds, 3),
                "bare_seconds": round(bare_seconds, 3),
                "ratio": round(ratio, 3),
                **{f"{name}_seconds": round(value, 3) for name, value in split.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
