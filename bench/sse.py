"""Benchmark live progress: many SSE streams on one API process, fed from PostgreSQL.

    python bench/sse.py [--streams N] [--rounds R] [--smoke]

Runs in a fresh schema `bench_<random>` of the `test` database (dropped at the end):

1. Starts the real API process (`python -m phantomflow.api.cli api`), submits and starts N jobs
   (tiny scripts; nothing renders) and opens one `GET /api/jobs/{id}/progress` stream
   per job, all at once, from this process.
2. Reads the API process's resident memory before and after the streams are open:
   memory per stream, and what 10,000 streams would need.
3. Emits R rounds of one `ProgressReported` event per job from this process (as a
   worker would: straight into the event store) and times each event from the moment
   its append committed to the moment its stream's client parsed it. Prints p50/p99.

Targets: p99 < 100 ms; 10,000 streams in 1 GiB. The last line printed is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from harness import (
    ApiProcess,
    BenchError,
    new_runtime,
    open_bench_account,
    parse_args,
    percentile,
    postgres_workspace,
    report,
    run_main,
    running_apis,
    tiny_request,
)

from phantomflow.adapters.settings import Settings

P99_TARGET_MS = 100.0
MEMORY_TARGET_BYTES = 1024**3
TARGET_STREAMS = 10_000
OPEN_BATCH = 50


class Streams:
    """N concurrent SSE clients on one aiohttp session, recording when events arrive."""

    def __init__(self, api: ApiProcess, api_key: str, job_ids: list[str]) -> None:
        self.api = api
        self.api_key = api_key
        self.job_ids = job_ids
        self.opened = 0
        self.all_open = asyncio.Event()
        # (job index, round) -> perf_counter() when the client parsed the event
        self.received: dict[tuple[int, int], float] = {}
        self.errors: list[str] = []

    async def run_one(self, session: aiohttp.ClientSession, index: int) -> None:
        url = f"{self.api.base_url}/api/jobs/{self.job_ids[index]}/progress"
        try:
            async with session.get(url, headers={"x-api-key": self.api_key}) as response:
                if response.status != 200:
                    self.errors.append(f"HTTP {response.status}")
                    return
                counted = False
                async for line in response.content:
                    if not line.startswith(b"data: "):
                        continue
                    stage = json.loads(line[6:]).get("stage") or ""
                    if stage.startswith("bench_"):
                        self.received[(index, int(stage[6:]))] = time.perf_counter()
                    elif stage == "starting" and not counted:
                        counted = True
                        self.opened += 1
                        if self.opened == len(self.job_ids):
                            self.all_open.set()
        except (aiohttp.ClientError, ConnectionError) as error:
            self.errors.append(f"{type(error).__name__}: {error}")


def emit(settings: Settings, jobs: list[Any], rounds: int, sent: dict[tuple[int, int], float]):
    """Append one progress event per job per round, as a worker does; record commit times."""
    runtime = new_runtime(settings)
    try:
        for number in range(rounds):
            for index, job in enumerate(jobs):
                runtime.app.report_progress(job, (number + 1) / (rounds + 2), f"bench_{number}")
                sent[(index, number)] = time.perf_counter()
    finally:
        runtime.close()


async def measure(
    api: ApiProcess, settings: Settings, count: int, rounds: int, settle: float
) -> dict[str, Any]:
    """`settle`: seconds to let the API process's memory settle before reading it."""
    runtime = new_runtime(settings)
    account = open_bench_account(runtime, credits=count * 10)
    script, _ = tiny_request()
    print(f"submitting and starting {count} jobs …", flush=True)
    jobs = []
    for _ in range(count):
        job_id = runtime.app.submit_render(account.account_id, script, None, {}).job_id
        job = runtime.app.get_job(job_id)
        runtime.app.start_job(job, "bench", lease_seconds=3600)
        jobs.append(job)
    runtime.close()

    await asyncio.sleep(settle)
    idle_rss = api.rss_bytes()
    streams = Streams(api, account.api_key, [str(job.id) for job in jobs])
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        try:
            # Opened OPEN_BATCH at a time: the API's Redis rate limiter fails requests
            # beyond its connection pool (100) when they all arrive at once.
            for first in range(0, count, OPEN_BATCH):
                batch = range(first, min(first + OPEN_BATCH, count))
                tasks += [asyncio.create_task(streams.run_one(session, i)) for i in batch]
                async with asyncio.timeout(60):
                    while streams.opened < batch.stop and not streams.errors:
                        await asyncio.sleep(0.01)
            await asyncio.wait_for(streams.all_open.wait(), timeout=1)
        except TimeoutError:
            raise BenchError(
                f"only {streams.opened} of {count} streams opened; errors: {streams.errors[:3]}"
                f"\n{api.log_tail()}"
            ) from None
        open_seconds = time.perf_counter() - started
        await asyncio.sleep(settle)
        open_rss = api.rss_bytes()
        print(f"{count} streams open in {open_seconds:.1f} s; emitting {rounds} rounds …")

        sent: dict[tuple[int, int], float] = {}
        emitter = threading.Thread(target=emit, args=(settings, jobs, rounds, sent))
        emit_started = time.perf_counter()
        emitter.start()
        await asyncio.to_thread(emitter.join)
        emit_seconds = time.perf_counter() - emit_started
        deadline = time.monotonic() + 30
        while len(streams.received) < count * rounds and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    latencies = sorted(
        (streams.received[key] - sent[key]) * 1000 for key in sent if key in streams.received
    )
    per_stream = (open_rss - idle_rss) / count
    projected = idle_rss + per_stream * TARGET_STREAMS
    figures = {
        "streams": count,
        "events": count * rounds,
        "received": len(streams.received),
        "emit_rate_per_s": round(count * rounds / emit_seconds),
        "latency_p50_ms": round(percentile(latencies, 0.50), 2),
        "latency_p99_ms": round(percentile(latencies, 0.99), 2),
        "latency_max_ms": round(latencies[-1], 2) if latencies else None,
        "api_rss_idle_mib": round(idle_rss / 2**20, 1),
        "api_rss_with_streams_mib": round(open_rss / 2**20, 1),
        "memory_per_stream_kib": round(per_stream / 1024, 1),
        "projected_rss_10k_streams_mib": round(projected / 2**20),
        "p99_target_met": percentile(latencies, 0.99) < P99_TARGET_MS,
        "memory_target_met": projected < MEMORY_TARGET_BYTES,
        "stream_errors": len(streams.errors),
    }
    return figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    with postgres_workspace() as (settings, workdir), running_apis(settings, workdir) as apis:
        figures = asyncio.run(measure(apis[0], settings, args.streams, args.rounds, args.settle))
    return {"smoke": args.smoke, **figures}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds before each memory reading"
    )
    args = parse_args(parser, argv, streams=5, rounds=2, settle=0.2)

    def body() -> int:
        f = run(args)
        report(
            [
                f"append-to-receive latency over {f['received']} of {f['events']} events"
                f" (emitted at {f['emit_rate_per_s']}/s): p50 {f['latency_p50_ms']} ms,"
                f" p99 {f['latency_p99_ms']} ms (target < {P99_TARGET_MS:g} ms)",
                f"API process memory: {f['api_rss_idle_mib']} MiB idle,"
                f" {f['api_rss_with_streams_mib']} MiB with {f['streams']} streams"
                f" ({f['memory_per_stream_kib']} KiB a stream;"
                f" ~{f['projected_rss_10k_streams_mib']} MiB for 10,000)",
            ],
            f,
        )
        return 0 if f["received"] == f["events"] else 1

    return run_main("bench/sse.py", body)


if __name__ == "__main__":
    sys.exit(main())
