"""Full rebuild of every read model on PostgreSQL: events per second.

    python bench/projections.py [--jobs 2000] [--progress 40]

Writes a history of jobs (submitted, started, N progress reports, completed, with
their charges and refunds), then rebuilds every read model from zero. Target: at least
20,000 events per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._pg import postgres_runtime
from phantomflow.domain.jobs import RenderJob

SCRIPT = {
    "width": 320,
    "height": 240,
    "fps": 15,
    "quality": "low",
    "scenes": [{"duration": 2, "background": "#000000", "elements": []}],
}


def write_history(runtime, jobs: int, progress: int) -> int:
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
        account.refund(job.id, 1, kind="settlement", reason="bench")
        app.save(account, job)
    return app.recorder.max_notification_id() or 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--progress", type=int, default=40)
    args = parser.parse_args()
    with postgres_runtime() as runtime:
        began = time.perf_counter()
        events = write_history(runtime, args.jobs, args.progress)
        written = time.perf_counter() - began
        per_model = {}
        began = time.perf_counter()
        for runner in runtime.read_models:
            started = time.perf_counter()
            handled = runner.rebuild()
            per_model[runner.follower.name] = {
                "events": handled,
                "seconds": round(time.perf_counter() - started, 2),
            }
        rebuilt = time.perf_counter() - began
        figures = {
            "events_in_store": events,
            "write_seconds": round(written, 1),
            "rebuild_seconds": round(rebuilt, 2),
            "events_per_second": round(events / rebuilt),
            "read_models": per_model,
            "target_met": events / rebuilt >= 20_000,
        }
        print(f"{events:,} events in the store (written in {written:.1f} s)")
        for name, figure in per_model.items():
            print(f"  {name:10} {figure['events']:>8,} events handled in {figure['seconds']} s")
        print(f"full rebuild: {rebuilt:.2f} s, {figures['events_per_second']:,} events/s")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
