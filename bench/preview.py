"""How soon a preview shows its storyboard and its proxy, against the full render of the
same script, in the same run.

    python bench/preview.py [--rounds 1] [--smoke]

Starts the embedded system (`phantomflow serve`, a fresh data directory; the media of
bench/render.py served from a local HTTP server), warms it up with one tiny preview,
then for each of two scripts:

- `10s-1080p`: bench/render.py's own script (two scenes joined by a 1 s fade, a 1080p
  video with sound in a box, an image, two texts), 10 s at 1920×1080 `high`;
- `30s-720p`: six scenes over 30 s at 1280×720 `high` (colour, image and looping video
  backgrounds, a video and an image in boxes, texts with boxes and fades, five
  transitions of four kinds);

POSTs /api/previews and follows the preview's event stream, timing (on the client's
clock, from just before the POST) the `storyboard` event and the `complete` event; then
POSTs /api/render with the same script and times its `complete` event the same way.
Targets: storyboard at most 1 s; proxy at most 1/8 of the render's time. With
`--rounds N` each script is measured N times (preview and render interleaved) and the
medians are reported. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from harness import (
    TINY_SCRIPT,
    BenchError,
    bench_parser,
    free_port,
    loadavg,
    parse_args,
    report,
    run_main,
)
from render import make_media, script_for, serve

STORYBOARD_TARGET_S = 1.0
PROXY_TARGET_RATIO = 1 / 8


def six_scenes(base: str, seconds: float, width: int, height: int) -> dict[str, Any]:
    """Six scenes over `seconds` (five transitions of half a second each), laid out for
    1280×720 and scaled to `width` × `height`."""
    scene = (seconds + 5 * 0.5) / 6

    def px(value: int) -> int:
        return max(1, round(value * width / 1280))

    def text(words: str, **more: Any) -> dict[str, Any]:
        return {"type": "text", "text": words, "font_size": px(56), **more}

    def fade(kind: str = "fade") -> dict[str, Any]:
        return {"type": kind, "duration": 0.5}

    clip, logo = f"{base}/clip.mp4", f"{base}/logo.png"
    return {
        "width": width,
        "height": height,
        "fps": 30,
        "quality": "high",
        "scenes": [
            {"duration": scene, "background": "#102030", "transition": fade(),
             "elements": [text("Six scenes", fade_in=0.5, font_weight="bold")]},
            {"duration": scene, "background": {"type": "image", "src": logo, "fit": "cover"},
             "transition": fade("wipeleft"),
             "elements": [text("An image behind", background_color="#00000099",
                               position="bottom")]},
            {"duration": scene, "background": "#203040", "transition": fade("slideup"),
             "elements": [
                 {"type": "video", "src": clip, "x": px(80), "y": px(80), "width": px(640),
                  "height": px(360), "fit": "contain", "volume": 0.5},
                 text("A video in a box", position="bottom-right", fade_in=1)]},
            {"duration": scene, "background": "#302010", "transition": fade(),
             "elements": [text("Left", position="left"),
                          text("Right", position="right", start=1, fade_out=0.5)]},
            {"duration": scene, "background": {"type": "video", "src": clip, "loop": True},
             "transition": fade("wiperight"),
             "elements": [text("A video behind", position="top")]},
            {"duration": scene - 0.5, "background": "#000000",
             "elements": [
                 {"type": "image", "src": logo, "x": px(800), "y": px(200), "width": px(320),
                  "height": px(180), "fit": "fill", "opacity": 0.8, "fade_in": 0.5},
                 text("The end", position="center")]},
        ],
    }  # fmt: skip


class Server:
    """`phantomflow serve` on a fresh data directory, with one enterprise account."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "PHANTOMFLOW_DATA_DIR": str(work / "data"),
            "PHANTOMFLOW_ALLOW_PRIVATE_URLS": "1",
        }
        self.cli = [sys.executable, "-m", "phantomflow.api.cli"]
        self.log = (work / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [*self.cli, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        self.key = ""

    async def start(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                async with session.get(f"{self.base}/api/render/schema") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise BenchError("the embedded server did not start")
            await asyncio.sleep(0.2)
        created = subprocess.run(
            [*self.cli, "accounts", "create", "--plan", "enterprise", "--credits", "100000"],
            env=self.env, capture_output=True, check=True,
        )  # fmt: skip
        self.key = json.loads(created.stdout)["api_key"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


async def timed(
    session: aiohttp.ClientSession, server: Server, create: str, body: dict, stream: str
) -> dict[str, float]:
    """POST `body` to `create`, follow the stream at `stream` (formatted with the new
    id): seconds from just before the POST to each event's first arrival."""
    headers = {"x-api-key": server.key}
    started = time.monotonic()
    async with session.post(f"{server.base}{create}", json=body, headers=headers) as made:
        answer = await made.json()
        if made.status not in (201, 202):
            raise BenchError(f"POST {create} answered {made.status}: {answer}")
    url = server.base + stream.format(answer.get("preview_id") or answer.get("job_id"))
    seen: dict[str, float] = {}
    async with session.get(url, headers=headers) as events:
        name = ""
        async for raw in events.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
                seen.setdefault(name, time.monotonic() - started)
            elif line.startswith("data: ") and name == "error":
                raise BenchError(f"{create} failed: {line}")
            if name == "complete":
                return seen
    raise BenchError(f"the stream of {url} ended before its end")


async def measure(
    session: aiohttp.ClientSession, server: Server, script: dict
) -> dict[str, float | None]:
    preview = await timed(session, server, "/api/previews", script, "/api/previews/{}/progress")
    render = await timed(session, server, "/api/render", script, "/api/jobs/{}/progress")
    return {
        # A storyboard drawn before the stream was open comes with the stream's first
        # events: then this is when the stream said so (an upper bound).
        "storyboard": preview.get("storyboard"),
        "proxy": preview["complete"],
        "render": render["complete"],
    }


def median(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return round(statistics.median(known), 3) if known else None


async def run_async(options: argparse.Namespace, work: Path) -> dict[str, Any]:
    media = work / "media"
    media.mkdir()
    make_media(media, options.width, options.height, max(options.seconds, options.long_seconds))
    with serve(media) as base:
        scripts = {
            "10s-1080p": script_for(base, options.seconds, "high", options.width, options.height),
            "30s-720p": six_scenes(base, options.long_seconds, options.long_width,
                                   options.long_height),
        }  # fmt: skip
        server = Server(work)
        figures: dict[str, Any] = {}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
                await server.start(session)
                await measure(session, server, TINY_SCRIPT)  # warm-up: first FFmpeg runs
                for name, script in scripts.items():
                    rounds = [await measure(session, server, script) for _ in range(options.rounds)]
                    storyboard = median([r["storyboard"] for r in rounds])
                    proxy = median([r["proxy"] for r in rounds])
                    render = median([r["render"] for r in rounds])
                    assert proxy is not None and render is not None
                    figures[name] = {
                        "storyboard_seconds": storyboard,
                        "proxy_seconds": proxy,
                        "render_seconds": render,
                        "proxy_to_render": round(proxy / render, 3),
                        "rounds": rounds,
                    }
        finally:
            server.stop()
        return figures


def run(options: argparse.Namespace) -> dict[str, Any]:
    load_at_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as scratch:
        per_script = asyncio.run(run_async(options, Path(scratch)))
    flat = {
        f"{key}_{name.replace('-', '_')}": value
        for name, measured in per_script.items()
        for key, value in measured.items()
        if key != "rounds"
    }
    return {
        "smoke": options.smoke,
        "rounds": options.rounds,
        "loadavg_at_start": load_at_start,
        "loadavg_at_end": loadavg(),
        **flat,
        "scripts": per_script,
    }


def print_report(f: dict[str, Any]) -> None:
    lines = [
        f"load average {f['loadavg_at_start']} at start, {f['loadavg_at_end']} at end;"
        f" medians of {f['rounds']} round(s)"
    ]
    for name, measured in f["scripts"].items():
        storyboard, proxy = measured["storyboard_seconds"], measured["proxy_seconds"]
        ratio = measured["proxy_to_render"]
        lines += [
            f"{name}:",
            f"  storyboard  {storyboard if storyboard is not None else 'n/a'} s"
            f" (target <= {STORYBOARD_TARGET_S:g} s)",
            f"  proxy       {proxy} s = {ratio:.3f} of the render"
            f" (target <= {PROXY_TARGET_RATIO:.3f})",
            f"  render      {measured['render_seconds']} s",
        ]
    report(lines, f)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--long-seconds", type=float, default=30)
    parser.add_argument("--long-width", type=int, default=1280)
    parser.add_argument("--long-height", type=int, default=720)
    options = parse_args(
        parser, argv, seconds=2, width=320, height=180, long_seconds=6,
        long_width=320, long_height=180,
    )  # fmt: skip
    return run_main("bench/preview.py", lambda: print_report(run(options)))


if __name__ == "__main__":
    sys.exit(main())
