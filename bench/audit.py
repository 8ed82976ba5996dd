"""Loading an account with 100,000 events cold: with and without snapshots (PostgreSQL).

    python bench/audit.py [--events 100000] [--loads 3] [--smoke]

Writes `--events` credit movements on one account (one save, hence one snapshot, per
200), then loads the account `--loads` times each way and keeps the best:

- with snapshots: the latest snapshot and the events after it;
- without snapshots: every event from the first.

Every load is cold: each one is made by an application of its own with no aggregate
cache (the production application keeps recently used aggregates in memory, and a
load from that cache only fast-forwards: the same account then takes well under a
millisecond, which says nothing about replaying). The connection pool is opened before
the clock starts, and PostgreSQL's own buffers are warm, as on a busy server. For
scale, the same load from a warm aggregate cache is printed too.

Target: under 1 s with snapshots. The last line printed is one JSON object with every
figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from harness import bench_parser, parse_args, postgres_runtime, report, run_main

from phantomflow.domain.application import PhantomFlow

TARGET_SECONDS = 1.0
SAVE_EVERY = 200  # one snapshot per save, as in steady use

# Both spellings: `eventsourcing` reads the application-prefixed one first. Empty means
# no cache at all (0 would mean a cache without a size limit).
NO_CACHE = {"AGGREGATE_CACHE_MAXSIZE": "", "PHANTOMFLOW_AGGREGATE_CACHE_MAXSIZE": ""}


class WithoutSnapshots(PhantomFlow):
    name = "PhantomFlow"  # same tables, snapshots never read
    snapshotting_intervals = {}  # noqa: RUF012


def cold_load(
    kind: type[PhantomFlow], env: dict[str, str], account_id: UUID, version: int
) -> float:
    """Seconds to load the account in a fresh application of `kind` without a cache."""
    application = kind(env={**env, **NO_CACHE})
    try:
        assert application.repository.cache is None, "the load would not be cold"
        assert (application.snapshots is None) == (kind is WithoutSnapshots)
        application.recorder.max_notification_id()  # opens the pool's connection
        began = time.perf_counter()
        account = application.get_account(account_id)
        elapsed = time.perf_counter() - began
        assert account.version == version
        return elapsed
    finally:
        application.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with postgres_runtime() as runtime:
        app = runtime.app
        opened = app.open_account(plan="enterprise", credits=0)
        account = app.get_account(opened.account_id)
        started = time.perf_counter()
        while account.version < args.events:
            for _ in range(min(SAVE_EVERY, args.events - account.version)):
                account.grant(1, reason="bench")
            app.save(account)
        written = time.perf_counter() - started

        env = {key: value for key, value in app.env.items() if key != "IS_SNAPSHOTTING_ENABLED"}
        with_snapshots = min(
            cold_load(PhantomFlow, env, account.id, account.version) for _ in range(args.loads)
        )
        without_snapshots = min(
            cold_load(WithoutSnapshots, env, account.id, account.version) for _ in range(args.loads)
        )
        app.get_account(account.id)  # into the cache
        cached = float("inf")
        for _ in range(args.loads):
            began = time.perf_counter()
            app.get_account(account.id)
            cached = min(cached, time.perf_counter() - began)
    return {
        "smoke": args.smoke,
        "events": account.version,
        "loads": args.loads,
        "write_seconds": round(written, 2),
        "cold_load_with_snapshots_ms": round(with_snapshots * 1000, 2),
        "cold_load_without_snapshots_ms": round(without_snapshots * 1000, 1),
        "cached_load_ms": round(cached * 1000, 3),
        "target_met": with_snapshots < TARGET_SECONDS,
    }


def print_report(f: dict[str, Any]) -> None:
    report(
        [
            f"account with {f['events']:,} events (written in {f['write_seconds']:.1f} s);"
            f" best of {f['loads']} cold loads (a fresh application, no aggregate cache):",
            f"  with snapshots (every {SAVE_EVERY}): {f['cold_load_with_snapshots_ms']:>10} ms"
            f"   target < {TARGET_SECONDS * 1000:g} ms:"
            f" {'MET' if f['target_met'] else 'NOT MET'}",
            f"  without snapshots:          {f['cold_load_without_snapshots_ms']:>10} ms",
            f"  for scale, from the warm aggregate cache: {f['cached_load_ms']} ms",
        ],
        f,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=3, help="loads each way; the best counts")
    args = parse_args(parser, argv, events=1_000, loads=2)
    return run_main("bench/audit.py", lambda: print_report(run(args)))


if __name__ == "__main__":
    sys.exit(main())
