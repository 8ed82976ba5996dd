"""CPU per submission in the service layer, one thread, on an account with many queued jobs.

    python bench/submit_cpu.py [--queued 2000] [--submissions 500] [--smoke]

Runs in a fresh schema `bench_<random>` of the `test` database (dropped at the end),
in this process, one thread, one runtime: `app.submit_render` of a tiny script, with
no HTTP and no thread pool around it.

1. Opens two accounts and queues `--queued` jobs on one of them (nothing renders them,
   so they stay queued and the account carries them all as active charges).
2. Times `--submissions` more submissions on each account, the empty one first: the
   baseline of the same run. Per submission: this thread's CPU and the wall-clock time,
   and within them, reading the account (from the aggregate cache, fast-forwarded from
   the store) and inserting the events (the recorder's one round trip).

Prints both accounts' costs and their ratio: a submission should cost the same
whatever the account's queue (an account's state is the size of its active jobs, and
reading it from the cache copies that state). The last line printed is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from harness import (
    BENCH_ORIGIN,
    UNLIMITED,
    Runtime,
    bench_parser,
    new_runtime,
    open_bench_account,
    parse_args,
    postgres_workspace,
    report,
    run_main,
    tiny_request,
)


@dataclass
class Clock:
    """Thread CPU and wall-clock seconds, summed over calls."""

    cpu: float = 0.0
    wall: float = 0.0

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.cpu += time.thread_time() - cpu
                self.wall += time.perf_counter() - wall

        return timed_call


@dataclass
class Stages:
    total: Clock = field(default_factory=Clock)
    account_read: Clock = field(default_factory=Clock)
    insert: Clock = field(default_factory=Clock)

    def per_submission_ms(self, count: int) -> dict[str, float]:
        figures: dict[str, float] = {}
        for name in ("total", "account_read", "insert"):
            clock: Clock = getattr(self, name)
            figures[f"{name}_cpu_ms"] = round(clock.cpu * 1000 / count, 3)
            figures[f"{name}_wall_ms"] = round(clock.wall * 1000 / count, 3)
        return figures


def measure(runtime: Runtime, account_id: UUID, count: int) -> dict[str, float]:
    """`count` submissions to the account, timed as a whole and by stage."""
    app = runtime.app
    script, webhook_uri = tiny_request()
    stages = Stages()
    get, insert = app.repository.get, app.recorder.insert_events
    app.repository.get = stages.account_read.timed(get)  # type: ignore[method-assign]
    app.recorder.insert_events = stages.insert.timed(insert)  # type: ignore[method-assign]
    submit = stages.total.timed(app.submit_render)
    try:
        for _ in range(count):
            submit(account_id, script, webhook_uri, BENCH_ORIGIN)
    finally:
        del app.repository.get, app.recorder.insert_events  # the class's methods again
    return stages.per_submission_ms(count)


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "smoke": args.smoke,
        "queued": args.queued,
        "submissions": args.submissions,
    }
    with postgres_workspace() as (settings, _workdir):
        runtime = new_runtime(settings)
        try:
            runtime.views.close()  # submitting never reads a read model
            app = runtime.app
            empty = open_bench_account(runtime, UNLIMITED).account_id
            busy = open_bench_account(runtime, UNLIMITED).account_id
            script, webhook_uri = tiny_request()
            began = time.perf_counter()
            for _ in range(args.queued):
                app.submit_render(busy, script, webhook_uri, BENCH_ORIGIN)
            figures["queue_seconds"] = round(time.perf_counter() - began, 1)
            for account_id in (empty, busy):  # warm-up, not counted
                for _ in range(args.warmup):
                    app.submit_render(account_id, script, webhook_uri, BENCH_ORIGIN)
            baseline = measure(runtime, empty, args.submissions)
            loaded = measure(runtime, busy, args.submissions)
        finally:
            runtime.close()
    figures.update({f"empty_{name}": value for name, value in baseline.items()})
    figures.update({f"queued_{name}": value for name, value in loaded.items()})
    figures["cpu_ratio_queued_to_empty"] = round(
        loaded["total_cpu_ms"] / baseline["total_cpu_ms"], 3
    )
    return figures


def print_report(f: dict[str, Any]) -> None:
    lines = [
        "",
        f"PhantomFlow service layer, one thread — {f['submissions']} submissions per account,"
        f" per submission (CPU of this thread / wall clock):",
    ]
    for prefix, label in (("empty", "empty account"), ("queued", f"{f['queued']:,} queued")):
        lines.append(
            f"  {label:>14}: {f[f'{prefix}_total_cpu_ms']:.3f} / {f[f'{prefix}_total_wall_ms']:.3f}"
            f" ms;  reading the account {f[f'{prefix}_account_read_cpu_ms']:.3f} /"
            f" {f[f'{prefix}_account_read_wall_ms']:.3f} ms,  inserting the events"
            f" {f[f'{prefix}_insert_cpu_ms']:.3f} / {f[f'{prefix}_insert_wall_ms']:.3f} ms"
        )
    lines += [f"  CPU, queued / empty: {f['cpu_ratio_queued_to_empty']:.3f}", ""]
    report(lines, f)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--queued", type=int, default=2000, help="jobs queued on the busy account")
    parser.add_argument("--submissions", type=int, default=500, help="timed, per account")
    parser.add_argument("--warmup", type=int, default=50, help="untimed, per account")
    args = parse_args(parser, argv, queued=20, submissions=20, warmup=2)
    if args.submissions < 1 or args.queued < 0 or args.warmup < 0:
        parser.error("need --submissions >= 1, --queued >= 0, --warmup >= 0")

    return run_main("bench/submit_cpu.py", lambda: print_report(run(args)))


if __name__ == "__main__":
    sys.exit(main())
