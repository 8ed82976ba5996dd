"""Replaying an account with 100,000 events: with and without snapshots (PostgreSQL).

    python bench/audit.py [--events 100000]

Target: under 1 s with snapshots.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._pg import postgres_runtime
from phantomflow.domain.application import PhantomFlow


class WithoutSnapshots(PhantomFlow):
    name = "PhantomFlow"  # same tables, snapshots never read
    snapshotting_intervals = {}  # noqa: RUF012


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with postgres_runtime() as runtime:
        app = runtime.app
        opened = app.open_account(plan="enterprise", credits=0)
        account = app.get_account(opened.account_id)
        started = time.perf_counter()
        batch = 200  # one snapshot per save, as in steady use
        while account.version < args.events:
            for _ in range(min(batch, args.events - account.version)):
                account.grant(1, reason="bench")
            app.save(account)
        written = time.perf_counter() - started

        def replay(application: PhantomFlow) -> float:
            best = float("inf")
            for _ in range(3):
                began = time.perf_counter()
                replayed = application.get_account(opened.account_id)
                best = min(best, time.perf_counter() - began)
                assert replayed.version == account.version
            return best

        with_snapshots = replay(app)
        env = {key: value for key, value in app.env.items() if key != "IS_SNAPSHOTTING_ENABLED"}
        plain = WithoutSnapshots(env=env)
        assert plain.snapshots is None
        without_snapshots = replay(plain)
        plain.close()
        figures = {
            "events": account.version,
            "write_seconds": round(written, 2),
            "replay_with_snapshots_ms": round(with_snapshots * 1000, 2),
            "replay_without_snapshots_ms": round(without_snapshots * 1000, 1),
            "target_met": with_snapshots < 1.0,
        }
        print(f"account with {figures['events']:,} events (written in {written:.1f} s)")
        print(f"  replay with snapshots:    {figures['replay_with_snapshots_ms']:>10} ms")
        print(f"  replay without snapshots: {figures['replay_without_snapshots_ms']:>10} ms")
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
