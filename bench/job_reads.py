"""Benchmark job reads: `GET /api/jobs/{id}` on the real API process, against its floor.

    python bench/job_reads.py [--concurrency C] [--client wrk|aiohttp] [--seconds S]
                              [--requests N] [--api-processes P] [--smoke]

Runs in a fresh schema `bench_<random>` of the `test` database (dropped at the end):
writes a queued job and a finished one, brings the read models up to date (as the
projections process keeps them), starts the real API process (`python -m
phantomflow.api.cli api`, or P of them on one port) and reads each job from C
connections, by wrk for `--seconds` when it is installed, else by an aiohttp session
for N requests; every answer must be 200. Then the floor, the baseline of the same
run: the same client and processes answering `GET /api/jobs` with an unknown key (401
after one indexed read). Prints reads/s, p50/p99 latency, the API processes' CPU per
read, and each read's rate as a fraction of the floor's. The last line printed is one
JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import (
    BENCH_ORIGIN,
    ApiProcess,
    BenchError,
    Call,
    add_client_options,
    bench_parser,
    catch_up_read_models,
    fire,
    fmt,
    load,
    loadavg,
    new_runtime,
    open_bench_account,
    parse_args,
    postgres_workspace,
    report,
    run_main,
    running_apis,
    tiny_request,
)

from phantomflow.adapters.settings import Settings


def write_jobs(settings: Settings) -> tuple[str, dict[str, str]]:
    """An account with a queued job and a finished one: (its key, job id by status)."""
    runtime = new_runtime(settings)
    try:
        app = runtime.app
        account = open_bench_account(runtime)
        script, webhook_uri = tiny_request()
        queued = app.submit_render(account.account_id, script, webhook_uri, BENCH_ORIGIN).job_id
        finished = app.submit_render(account.account_id, script, webhook_uri, BENCH_ORIGIN).job_id
        app.start_job(app.get_job(finished), "bench", lease_seconds=3600)
        app.complete_job(finished, f"{finished}.mp4", 1.0, 1000)
        catch_up_read_models(runtime)
    finally:
        runtime.close()
    return account.api_key, {"queued": str(queued), "completed": str(finished)}


def read_figures(
    name: str, api_call: Call, apis: list[ApiProcess], args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    cpu_before = sum(api.cpu_seconds() for api in apis)
    result = load(apis[0].base_url, api_call, args, workdir)
    cpu = sum(api.cpu_seconds() for api in apis) - cpu_before
    if result.failures:
        raise BenchError(
            f"{len(result.failures)} {name} reads did not answer {api_call.expected};"
            f" first: {result.failures[0]}\n{apis[0].log_tail()}"
        )
    p50, p99, _slowest = result.percentiles_ms()
    return {
        f"{name}_per_s": round(result.rate, 1),
        f"{name}_p50_ms": round(p50, 2),
        f"{name}_p99_ms": round(p99, 2),
        f"{name}_api_cpu_ms": round(cpu * 1000 / result.done, 2) if result.done else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "smoke": args.smoke,
        "client": args.client,
        "seconds": args.seconds,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "api_processes": args.api_processes,
        "cpus": os.cpu_count(),
        "loadavg_at_start": loadavg(),
    }
    with postgres_workspace() as (settings, workdir):
        key, jobs = write_jobs(settings)
        calls = {
            f"{status}_read": Call("GET", f"/api/jobs/{job_id}", [key])
            for status, job_id in jobs.items()
        }
        with running_apis(settings, workdir, args.api_processes) as apis:
            for name, api_call in calls.items():  # warm-up, not counted
                warm = asyncio.run(fire(apis[0].base_url, api_call, 20, args.concurrency))
                if warm.failures:
                    raise BenchError(f"{name} warm-up failed: {warm.failures[0]}")
            for name, api_call in calls.items():
                figures.update(read_figures(name, api_call, apis, args, workdir))
            figures.update(read_figures("floor", Call.floor(), apis, args, workdir))
            for api in apis:
                api.check_alive()
    for name in calls:
        figures[f"{name}_to_floor"] = round(figures[f"{name}_per_s"] / figures["floor_per_s"], 3)
    return figures


def print_report(f: dict[str, Any]) -> None:
    lines = [
        "",
        "PhantomFlow job reads — "
        + (f"{f['seconds']} s" if f["client"] == "wrk" else f"{f['requests']} requests")
        + f" per kind, concurrency {f['concurrency']}, client {f['client']},"
        f" {f['api_processes']} API process(es), {f['cpus']} CPUs"
        f" (load {f['loadavg_at_start']} at start)",
    ]
    for name, label in (
        ("queued_read", "GET /api/jobs/{id}, queued"),
        ("completed_read", "GET /api/jobs/{id}, completed"),
        ("floor", "floor: GET /api/jobs, 401"),
    ):
        ratio = f.get(f"{name}_to_floor")
        lines.append(
            f"  {label:<31}{f[f'{name}_per_s']:>9.1f} /s   p50 {f[f'{name}_p50_ms']:.1f} ms"
            f"   p99 {f[f'{name}_p99_ms']:.1f} ms   API CPU {fmt(f[f'{name}_api_cpu_ms'], '.2f')}"
            " ms" + (f"   {ratio:.3f} of the floor" if ratio is not None else "")
        )
    lines.append("")
    report(lines, f)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    add_client_options(parser, requests=2000)
    parser.add_argument(
        "--api-processes", type=int, default=1, help="API processes sharing the port"
    )
    args = parse_args(parser, argv, requests=20, concurrency=4, seconds=1)
    if args.requests < 1 or args.concurrency < 1 or args.api_processes < 1:
        parser.error("need --requests, --concurrency and --api-processes >= 1")

    return run_main("bench/job_reads.py", lambda: print_report(run(args)))


if __name__ == "__main__":
    sys.exit(main())
