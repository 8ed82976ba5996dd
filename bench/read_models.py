"""Full rebuild of every read model on PostgreSQL: events per second.

    python bench/read_models.py [--jobs 2000] [--progress 40] [--smoke]

Writes a history of jobs on one account, each as the application records it
(submitted and charged, started, N progress reports, completed, the unused estimate
refunded and the job released), then drops and rebuilds every read model from zero.
Target: at least 20,000 events per second. The last line printed is one JSON object
with every figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from harness import (
    Runtime,
    bench_parser,
    parse_args,
    postgres_runtime,
    rebuild_read_models,
    report,
    run_main,
)

from phantomflow.domain.jobs import RenderJob

TARGET_EVENTS_PER_SECOND = 20_000

SCRIPT = {
    "width": 320,
    "height": 240,
    "fps": 15,
    "quality": "low",
    "scenes": [{"duration": 2, "background": "#000000", "elements": []}],
}


def write_history(runtime: Runtime, jobs: int, progress: int) -> int:
    """`jobs` finished jobs on one account; returns the events in the store."""
    app = runtime.app
    opened = app.open_account(plan="enterprise", credits=jobs * 10)
    account = app.get_account(opened.account_id)
    for _ in range(jobs):
        job = RenderJob(
            account_id=account.id,
            script=SCRIPT,
            estimated_credits=2,
            quality="low",
            webhook_uri=None,
            origin={"channel": "bench"},
        )
        account.charge(job.id, 2)
        job.start("bench-worker")
        for step in range(progress):
            job.report_progress((step + 1) / (progress + 1), "rendering_scene_1")
        job.complete(f"{job.id}.mp4", 1.0, 1000, credits_used=1)
        # As `complete_job` does: the unused estimate back, and the job no longer
        # counts against the account's concurrency limit.
        account.refund(job.id, 1, kind="settlement", reason="bench")
        account.release(job.id)
        app.save(account, job)
    return app.recorder.max_notification_id() or 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    with postgres_runtime() as runtime:
        began = time.perf_counter()
        events = write_history(runtime, args.jobs, args.progress)
        written = time.perf_counter() - began
        began = time.perf_counter()
        per_model = rebuild_read_models(runtime)
        rebuilt = time.perf_counter() - began
    return {
        "smoke": args.smoke,
        "jobs": args.jobs,
        "events_in_store": events,
        "write_seconds": round(written, 1),
        "rebuild_seconds": round(rebuilt, 2),
        "events_per_second": round(events / rebuilt),
        "read_models": per_model,
        "target_met": events / rebuilt >= TARGET_EVENTS_PER_SECOND,
    }


def print_report(f: dict[str, Any]) -> None:
    met = "MET" if f["target_met"] else "NOT MET"
    report(
        [
            f"{f['events_in_store']:,} events in the store (written in {f['write_seconds']:.1f} s)",
            *(
                f"  {name:10} {model['events']:>8,} events handled in {model['seconds']} s"
                for name, model in f["read_models"].items()
            ),
            f"full rebuild: {f['rebuild_seconds']:.2f} s, {f['events_per_second']:,} events/s"
            f"   target >= {TARGET_EVENTS_PER_SECOND:,}: {met}",
        ],
        f,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--progress", type=int, default=40, help="progress reports per job")
    args = parse_args(parser, argv, jobs=20, progress=3)
    return run_main("bench/read_models.py", lambda: print_report(run(args)))


if __name__ == "__main__":
    sys.exit(main())
