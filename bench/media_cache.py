"""Twenty jobs that share one 100 MB remote video: with the media cache and without.

1. Makes a video of about `--size-mb` MB (noise, so it does not compress; 640x360) and
   serves it from an HTTP server on 127.0.0.1 (started here, PHANTOMFLOW_ALLOW_PRIVATE_URLS
   as the tests do) that sends an `ETag`, answers `If-None-Match` with 304, counts the
   bytes it sends and, with `--link-mbps`, paces them to a link of that speed (a remote
   source is further away than loopback).
2. Renders `--jobs` scripts (320x240, 1 s, low) that each use that video, through the
   real renderer (download, probe, one FFmpeg run, poster), `--threads` at a time as
   one worker process's threads take them: without the cache (every job downloads the
   video) and with a fresh (empty) cache folder, alternately, `--repeat` times each, in
   the same run.

Prints the bytes the server sent each way (goal with the cache: one download, so
bytes_ratio = 1 / jobs) and the total wall times (medians of the repeats) and their
ratio (with / without). The last line printed is one JSON object with every figure.

    python bench/media_cache.py [--size-mb 100] [--jobs 20] [--threads 4]
                                [--link-mbps 0] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import imageio_ffmpeg
from aiohttp import web

from phantomflow.adapters.media import FetchLimits, MediaFetcher
from phantomflow.adapters.media_cache import MediaCache
from phantomflow.adapters.render import FFmpegRenderer
from phantomflow.domain.script import MovieScript

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CHUNK = 256 * 1024


def make_video(target: Path, size_mb: float) -> None:
    """About `size_mb` MB of H.264 that does not compress (temporal noise), 640x360."""
    seconds = max(2, round(size_mb / 8))  # about 64 Mbit/s
    bitrate = f"{size_mb * 8 / seconds:.2f}M"
    subprocess.run(
        [FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", f"testsrc2=s=640x360:r=30:d={seconds}", "-vf", "noise=alls=80:allf=t",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", bitrate, "-maxrate", bitrate,
         "-bufsize", bitrate, "-movflags", "+faststart", str(target)],
        check=True, timeout=600,
    )  # fmt: skip


@dataclass
class Counts:
    downloads: int = 0
    revalidations: int = 0
    bytes_sent: int = 0

    def reset(self) -> None:
        self.downloads = self.revalidations = self.bytes_sent = 0


@contextmanager
def media_server(video: Path, link_mbps: float) -> Iterator[tuple[str, Counts]]:
    """The video at `<base>/video.mp4`, with an ETag, paced to `link_mbps` (0: as fast
    as loopback goes)."""
    counts = Counts()
    etag = f'"{video.stat().st_size}-{video.stat().st_mtime_ns}"'
    lock = threading.Lock()

    async def serve(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == etag:
            with lock:
                counts.revalidations += 1
            return web.Response(status=304, headers={"ETag": etag})
        with lock:
            counts.downloads += 1
        size = video.stat().st_size
        headers = {"Content-Type": "video/mp4", "ETag": etag, "Content-Length": str(size)}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        started = time.monotonic()
        sent = 0
        with video.open("rb") as file:
            while chunk := file.read(CHUNK):
                await response.write(chunk)
                sent += len(chunk)
                with lock:
                    counts.bytes_sent += len(chunk)
                if link_mbps:
                    ahead = sent * 8 / (link_mbps * 1e6) - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        return response

    app = web.Application()
    app.router.add_get("/video.mp4", serve)
    with harness.app_in_thread(app) as base:
        yield base, counts


def script(url: str) -> MovieScript:
    return MovieScript.from_dict(
        {
            "width": 320,
            "height": 240,
            "fps": 15,
            "quality": "low",
            "scenes": [
                {
                    "duration": 1,
                    "background": "#000000",
                    "elements": [{"type": "video", "src": url, "fit": "cover", "muted": True}],
                }
            ],
        }
    )


def run_jobs(
    renderer: FFmpegRenderer, url: str, jobs: int, threads: int, scratch: Path
) -> tuple[float, int, int]:
    """Render `jobs` scripts, `threads` at a time: (wall seconds, cache hits, misses)."""
    movie = script(url)
    said: list[dict[str, int]] = []

    def job(number: int) -> None:
        def progress(_value: float, _stage: str, *, media_cache=None) -> None:  # type: ignore[no-untyped-def]
            if media_cache is not None:
                said.append(media_cache)

        with tempfile.TemporaryDirectory(prefix=f"job{number}-", dir=scratch) as work:
            renderer.render(movie, Path(work) / "out.mp4", progress, Path(work))

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(job, number) for number in range(jobs)]:
            done.result()
    elapsed = time.perf_counter() - started
    return elapsed, sum(s["hits"] for s in said), sum(s["misses"] for s in said)


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--link-mbps", type=float, default=0, help="pace the server (0: no)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternately")
    args = harness.parse_args(parser, argv, size_mb=0.3, jobs=4, threads=2, repeat=1)
    with tempfile.TemporaryDirectory(prefix="bench-media-cache-") as folder:
        scratch = Path(folder)
        video = scratch / "video.mp4"
        make_video(video, args.size_mb)
        size = video.stat().st_size
        limits = FetchLimits(max_bytes=max(size * 2, 200 * 1024 * 1024), timeout_seconds=600)
        plain = FFmpegRenderer(fetcher=MediaFetcher(allow_private=True, limits=limits))
        without_runs: list[float] = []
        with_runs: list[float] = []
        with media_server(video, args.link_mbps) as (base, counts):
            url = f"{base}/video.mp4"
            for number in range(args.repeat):
                counts.reset()
                seconds, _, without_misses = run_jobs(plain, url, args.jobs, args.threads, scratch)
                without_runs.append(seconds)
                without = (counts.downloads, counts.revalidations, counts.bytes_sent)
                counts.reset()
                cache = MediaCache(scratch / f"cache{number}", max_bytes=size * 4)
                cached = FFmpegRenderer(
                    fetcher=MediaFetcher(allow_private=True, limits=limits, cache=cache)
                )
                seconds, hits, misses = run_jobs(cached, url, args.jobs, args.threads, scratch)
                with_runs.append(seconds)
                with_ = (counts.downloads, counts.revalidations, counts.bytes_sent)
    without_s, with_s = statistics.median(without_runs), statistics.median(with_runs)
    figures: dict[str, Any] = {
        "smoke": args.smoke,
        "video_bytes": size,
        "jobs": args.jobs,
        "threads": args.threads,
        "link_mbps": args.link_mbps,
        "downloads_without_cache": without[0],
        "bytes_without_cache": without[2],
        "downloads_with_cache": with_[0],
        "revalidations_with_cache": with_[1],
        "bytes_with_cache": with_[2],
        "bytes_ratio": with_[2] / without[2],
        "cache_hits": hits,
        "cache_misses": misses,
        "misses_without_cache": without_misses,
        "wall_without_cache_s": round(without_s, 3),
        "wall_with_cache_s": round(with_s, 3),
        "wall_ratio": round(with_s / without_s, 3),
        "wall_without_cache_runs_s": [round(s, 3) for s in without_runs],
        "wall_with_cache_runs_s": [round(s, 3) for s in with_runs],
        "loadavg": harness.loadavg(),
    }
    f = figures
    harness.report(
        [
            f"{args.jobs} jobs sharing one {size / 1e6:.1f} MB video, {args.threads} at a time"
            f" (link {'loopback' if not args.link_mbps else f'{args.link_mbps:g} Mbit/s'};"
            f" load average {f['loadavg']:.2f})",
            f"  without the cache: {f['downloads_without_cache']} downloads,"
            f" {f['bytes_without_cache'] / 1e6:.1f} MB sent (the last run)",
            f"  with the cache:    {f['downloads_with_cache']} download(s)"
            f" + {f['revalidations_with_cache']} revalidations (304),"
            f" {f['bytes_with_cache'] / 1e6:.1f} MB sent (the last run;"
            f" {f['cache_hits']} hits, {f['cache_misses']} misses in the jobs' events)",
            f"  bytes with / without: {f['bytes_ratio']:.3f} (goal: 1/{args.jobs}"
            f" = {1 / args.jobs:.3f})",
            f"  wall time, median of {args.repeat}: without {f['wall_without_cache_s']:.2f} s"
            f" {f['wall_without_cache_runs_s']}, with {f['wall_with_cache_s']:.2f} s"
            f" {f['wall_with_cache_runs_s']}: with / without {f['wall_ratio']:.2f}",
        ],
        figures,
    )
    return None


if __name__ == "__main__":
    sys.exit(harness.run_main("media_cache", main))
