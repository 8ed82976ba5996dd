"""Benchmark render submissions on PostgreSQL: real HTTP, the service layer alone, pgbench.

    python bench/submit.py [--requests N] [--concurrency C] [--accounts K] [--env KEY=VALUE]
                           [--client wrk|aiohttp] [--seconds S] [--api-processes P] [--smoke]

Runs in a fresh schema `bench_<random>` of the `test` database (dropped at the end):

1. HTTP: the real API process (`python -m phantomflow.api.cli api`; `--api-processes P` starts P
   of them on one port), `POST /api/render` of a tiny script from C concurrent
   connections, by wrk for `--seconds` when it is installed (a C client, as pgbench
   is), else by an aiohttp session for N requests; every answer must be 202. Prints
   submissions/s, p50/p99 latency, the jobs the event store recorded meanwhile, and
   the API processes' CPU per submission. Then the HTTP floor: the same client and
   processes answering `GET /api/jobs` with an unknown key (401, one read, no write).
2. In-process: `runtime.app.submit_render` from C threads, each with a runtime of its
   own (so its own connections), N submissions. Prints submissions/s.
3. pgbench: a comparable two-row transaction (BEGIN; one INSERT into each of two
   tables with ~300 random bytes; COMMIT) at the same concurrency, plus the same
   transaction behind `LOCK TABLE ... IN EXCLUSIVE MODE`, which is what
   `eventsourcing` does on every insert. Prints tps and whether HTTP reaches at least
   half of pgbench's rate. Without pgbench installed, `--smoke` leaves this phase out.

By default every submission charges one account (each one reloads and saves that
account, so concurrent senders meet version conflicts); `--accounts K` spreads them
over K accounts, `--env` tries a setting (e.g. PHANTOMFLOW_AGGREGATE_CACHE_MAXSIZE=1000)
without changing code. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import get_topic
from harness import (
    BENCH_ORIGIN,
    DATABASE_URL,
    PGBENCH,
    UNLIMITED,
    BenchError,
    Call,
    HttpResult,
    Runtime,
    add_client_options,
    bench_parser,
    fire,
    fmt,
    load,
    loadavg,
    new_runtime,
    open_bench_account,
    parse_args,
    pgbench,
    postgres_workspace,
    report,
    run_main,
    running_apis,
    tiny_request,
)

from phantomflow.adapters.settings import Settings
from phantomflow.domain.jobs import RenderJob

TARGET_RATIO = 0.5

PGBENCH_SCRIPT = """\
\\set payload random(1, 2000000000)
BEGIN;
{lock}INSERT INTO a (originator, version, topic, state) VALUES (gen_random_uuid(), 1, \
'domain.accounts:CreditAccount.CreditsCharged', \
decode(repeat(md5(:payload::text || 'a'), 19), 'hex'));
INSERT INTO b (originator, version, topic, state) VALUES (gen_random_uuid(), 1, \
'domain.jobs:RenderJob.Submitted', decode(repeat(md5(:payload::text || 'b'), 19), 'hex'));
COMMIT;
"""
PGBENCH_TABLES = """
DROP TABLE IF EXISTS a, b;
CREATE TABLE a (id bigserial PRIMARY KEY, originator uuid NOT NULL, version int NOT NULL,
                topic text NOT NULL, state bytea NOT NULL);
CREATE TABLE b (id bigserial PRIMARY KEY, originator uuid NOT NULL, version int NOT NULL,
                topic text NOT NULL, state bytea NOT NULL);
"""


def rollbacks(url: str) -> int:
    """Database-wide rolled-back transactions so far (a failed insert is one)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def submissions_recorded(url: str, schema: str) -> int:
    """RenderJob.Submitted events in the bench schema's event store."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {schema}.phantomflow_events WHERE topic = %s",
            (get_topic(RenderJob.Submitted),),
        ).fetchone()
    return int(row[0]) if row else 0


def event_sizes(url: str, schema: str) -> dict[str, float]:
    """Average stored-event size in the bench schema's events table(s)."""
    sizes: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = %s AND column_name = 'state'"
            " AND table_name NOT IN ('a', 'b')",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            row = conn.execute(
                f'SELECT count(*), avg(octet_length(state)) FROM {schema}."{table}"'
            ).fetchone()
            if row and row[0]:
                sizes[table] = round(float(row[1]), 1)
    return sizes


# --- in-process load ------------------------------------------------------------------


@dataclass
class InProcessResult:
    elapsed: float
    submissions: int
    conflicts: int
    failures: list[str]


def count_conflicts(runtime: Runtime, counter: list[int], lock: threading.Lock) -> None:
    """Wrap this runtime's `save` to count optimistic-concurrency conflicts."""
    save = runtime.app.save

    def counting_save(*args: Any, **kwargs: Any) -> Any:
        try:
            return save(*args, **kwargs)
        except RecordConflictError:
            with lock:
                counter[0] += 1
            raise

    runtime.app.save = counting_save  # type: ignore[method-assign]


def in_process(
    settings: Settings,
    account_ids: Sequence[UUID],
    requests: int,
    concurrency: int,
    warmup: int,
    extra_env: dict[str, str],
) -> InProcessResult:
    """`requests` submissions from `concurrency` threads; thread i uses account i mod len."""
    script, webhook_uri = tiny_request()
    lock = threading.Lock()
    issued = [0]
    conflicts = [0]
    errors: list[BaseException] = []
    failures: list[str] = []
    runtimes: list[Runtime] = []
    try:
        for _ in range(concurrency):  # appended one by one, so all get closed
            runtime = new_runtime(settings, extra_env)
            runtimes.append(runtime)
            # Submitting never reads a read model: give back the view store's
            # connections (closing a pool twice is harmless).
            runtime.views.close()
        barrier = threading.Barrier(concurrency + 1)
        per_thread_warmup = max(1, math.ceil(warmup / concurrency))

        def take() -> bool:
            with lock:
                if issued[0] >= requests:
                    return False
                issued[0] += 1
                return True

        def work(runtime: Runtime, account_id: UUID) -> None:
            try:
                for _ in range(per_thread_warmup):
                    runtime.app.submit_render(account_id, script, webhook_uri, BENCH_ORIGIN)
                count_conflicts(runtime, conflicts, lock)
            except BaseException as error:
                errors.append(error)
                barrier.abort()
                return
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return
            while take():
                try:
                    runtime.app.submit_render(account_id, script, webhook_uri, BENCH_ORIGIN)
                except Exception as error:  # e.g. conflict retries exhausted
                    with lock:
                        failures.append(repr(error))

        threads = [
            threading.Thread(target=work, args=(rt, account_ids[i % len(account_ids)]))
            for i, rt in enumerate(runtimes)
        ]
        for thread in threads:
            thread.start()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    finally:
        for runtime in runtimes:
            runtime.close()
    if errors:
        raise BenchError(f"in-process warm-up failed: {errors[0]!r}")
    return InProcessResult(
        elapsed=elapsed,
        submissions=issued[0] - len(failures),
        conflicts=conflicts[0],
        failures=failures,
    )


# --- main -----------------------------------------------------------------------------


def http_phase(
    args: argparse.Namespace,
    settings: Settings,
    workdir: Path,
    api_keys: list[str],
    figures: dict[str, Any],
    problems: list[str],
) -> HttpResult:
    """Submissions against the real API process(es), then the floor; fills `figures`."""
    schema = settings.database_schema or ""
    with running_apis(settings, workdir, args.api_processes, args.env) as apis:
        base_url = apis[0].base_url
        warm = asyncio.run(fire(base_url, Call.render(api_keys), args.warmup, args.concurrency))
        if warm.failures:
            raise BenchError(f"warm-up request failed: {warm.failures[0]}")
        rollbacks_before = rollbacks(DATABASE_URL)
        recorded_before = submissions_recorded(DATABASE_URL, schema)
        cpu_before = sum(api.cpu_seconds() for api in apis)
        http = load(base_url, Call.render(api_keys), args, workdir)
        api_cpu = sum(api.cpu_seconds() for api in apis) - cpu_before
        figures["http_db_rollbacks"] = rollbacks(DATABASE_URL) - rollbacks_before
        # Cross-check of the client's count: what the event store holds.
        figures["http_submissions_recorded"] = (
            submissions_recorded(DATABASE_URL, schema) - recorded_before
        )
        floor = load(base_url, Call.floor(), args, workdir)
        figures["http_floor_per_s"] = round(floor.rate, 1)
        for api in apis:
            api.check_alive()
        log_tail = apis[0].log_tail(40)
    if http.failures:
        problems.append(
            f"{len(http.failures)} HTTP submissions did not answer 202;"
            f" first: {http.failures[0]}\nthe API's log ends:\n{log_tail}"
        )
    if not http.rate:
        raise BenchError(f"no HTTP submission succeeded; first failure: {http.failures[0]}")
    p50, p99, slowest = http.percentiles_ms()
    first_half, second_half = http.half_rates()
    figures.update(
        http_submissions_accepted=http.done,
        http_submissions_per_s=round(http.rate, 1),
        http_p50_ms=round(p50, 2),
        http_p99_ms=round(p99, 2),
        http_max_ms=round(slowest, 2),
        http_rate_first_half=round(first_half, 1),
        http_rate_second_half=round(second_half, 1),
        http_elapsed_s=round(http.elapsed, 2),
        http_non_202=len(http.failures),
        # CPU of the API process(es) over the run, per accepted submission.
        api_cpu_ms_per_submission=round(api_cpu * 1000 / http.done, 2),
    )
    return http


def run(args: argparse.Namespace, problems: list[str]) -> dict[str, Any]:
    """Run every phase; returns the figures, appends anything that went wrong to `problems`."""
    figures: dict[str, Any] = {
        "smoke": args.smoke,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "accounts": args.accounts,
        "warmup": args.warmup,
        "env": args.env,
        "client": args.client,
        "seconds": args.seconds,
        "api_processes": args.api_processes,
        "cpus": os.cpu_count(),
        "loadavg_at_start": loadavg(),
    }
    with postgres_workspace() as (settings, workdir):
        schema = settings.database_schema or ""
        figures["schema"] = schema
        # Enough for any run: wrk sends for a time, not a count.
        setup = new_runtime(settings)
        try:
            http_accounts = [open_bench_account(setup, UNLIMITED) for _ in range(args.accounts)]
            local_accounts = [open_bench_account(setup, UNLIMITED) for _ in range(args.accounts)]
        finally:
            setup.close()

        # 1. HTTP, against the real API process(es).
        keys = [account.api_key for account in http_accounts]
        http = http_phase(args, settings, workdir, keys, figures, problems)

        # 2. The service layer alone, one runtime per thread. A failure here (say, the
        # database out of connections) is reported, and the other figures still count.
        figures.update(
            inprocess_submissions_per_s=None,
            inprocess_conflicts=None,
            inprocess_elapsed_s=None,
            inprocess_failures=None,
        )
        try:
            local = in_process(
                settings,
                [account.account_id for account in local_accounts],
                args.requests,
                args.concurrency,
                args.warmup,
                args.env,
            )
        except Exception as error:
            problems.append(f"in-process phase failed: {type(error).__name__}: {error}")
        else:
            if local.failures:
                problems.append(
                    f"{len(local.failures)} of {args.requests} in-process submissions failed;"
                    f" first: {local.failures[0]}"
                )
            figures.update(
                inprocess_submissions_per_s=round(local.submissions / local.elapsed, 1),
                inprocess_conflicts=local.conflicts,
                inprocess_elapsed_s=round(local.elapsed, 2),
                inprocess_failures=len(local.failures),
            )
        figures["event_state_bytes_avg"] = event_sizes(DATABASE_URL, schema)

        # 3. pgbench: the same two-row write, without and with eventsourcing's table lock.
        figures.update(pgbench_tps=None, pgbench_locked_tps=None, http_to_pgbench_ratio=None)
        figures.update(target_ratio=TARGET_RATIO, target_met=None)
        if PGBENCH is None and args.smoke:
            print("bench/submit.py: pgbench is not installed: its phase left out of this run")
            return figures
        tps = run_pgbench(schema, args, workdir, lock=False)
        try:
            locked_tps: float | None = round(run_pgbench(schema, args, workdir, lock=True), 1)
        except BenchError as error:
            problems.append(f"pgbench with the table lock: {error}")
            locked_tps = None
        ratio = http.rate / tps
        figures.update(
            pgbench_tps=round(tps, 1),
            pgbench_locked_tps=locked_tps,
            http_to_pgbench_ratio=round(ratio, 3),
            target_met=ratio >= TARGET_RATIO,
        )
    return figures


def run_pgbench(schema: str, args: argparse.Namespace, workdir: Path, lock: bool) -> float:
    script = PGBENCH_SCRIPT.format(lock="LOCK TABLE a IN EXCLUSIVE MODE;\n" if lock else "")
    return pgbench(schema, script, PGBENCH_TABLES, args.concurrency, args.pgbench_seconds, workdir)


def halves(f: dict[str, Any]) -> str:
    """The aiohttp client's rates over each half of the run (wrk reports none)."""
    first, second = f["http_rate_first_half"], f["http_rate_second_half"]
    if math.isnan(first) or math.isnan(second):
        return ""
    return f"first half {first:.1f} /s, second half {second:.1f} /s; "


def print_report(f: dict[str, Any]) -> None:
    met = {None: "n/a", True: "MET", False: "NOT MET"}[f["target_met"]]
    report(
        [
            "",
            "PhantomFlow submission benchmark — "
            + (f"{f['seconds']} s of HTTP" if f["client"] == "wrk" else f"{f['requests']} requests")
            + ","
            f" concurrency {f['concurrency']}, {f['accounts']} account(s), {f['cpus']} CPUs"
            f" (load {f['loadavg_at_start']} at start)",
            f"  client {f['client']}, {f['api_processes']} API process(es)",
            f"  HTTP POST /api/render   {f['http_submissions_per_s']:>9.1f} /s"
            f"   p50 {f['http_p50_ms']:.1f} ms   p99 {f['http_p99_ms']:.1f} ms"
            f"   max {f['http_max_ms']:.1f} ms",
            f"{'':26}{halves(f)}{f['http_non_202']} non-202;"
            f" {f['http_db_rollbacks']} DB rollbacks (database-wide);"
            f" {f['http_submissions_recorded']} jobs recorded",
            f"{'':26}API process CPU {f['api_cpu_ms_per_submission']:.2f} ms per submission",
            f"  HTTP floor (401 answers) {f['http_floor_per_s']:>8.1f} /s"
            "   same client and process(es), one read, no write",
            f"  in-process submit       {fmt(f['inprocess_submissions_per_s'], '>9.1f')} /s"
            f"   ({fmt(f['inprocess_conflicts'], '')} version conflicts retried,"
            f" {fmt(f['inprocess_failures'], '')} failed)",
            f"  pgbench 2-row insert    {fmt(f['pgbench_tps'], '>9.1f')} tps",
            f"  pgbench + table lock    {fmt(f['pgbench_locked_tps'], '>9.1f')} tps",
            f"  HTTP / pgbench          {fmt(f['http_to_pgbench_ratio'], '>9.3f')}"
            f"   target >= {f['target_ratio']}: {met}",
            "",
        ],
        f,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    add_client_options(parser, requests=2000)
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        help="accounts to spread submissions over (sender i uses account i mod this)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="warm-up submissions")
    parser.add_argument(
        "--api-processes", type=int, default=1, help="API processes sharing the port"
    )
    parser.add_argument("--pgbench-seconds", type=int, default=10, help="pgbench -T")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the API process and the in-process runtimes, to try"
        " a setting without changing code (e.g. PHANTOMFLOW_AGGREGATE_CACHE_MAXSIZE=1000);"
        " interpreter settings such as PYTHONOPTIMIZE reach the API process only",
    )
    args = parse_args(
        parser, argv, requests=20, concurrency=4, warmup=4, seconds=1, pgbench_seconds=1
    )
    try:
        args.env = dict(item.split("=", 1) for item in args.env)
    except ValueError:
        parser.error("--env takes KEY=VALUE")
    if args.requests < 2 or args.concurrency < 1 or args.warmup < 0 or args.accounts < 1:
        parser.error("need --requests >= 2, --concurrency >= 1, --accounts >= 1, --warmup >= 0")
    problems: list[str] = []

    def body() -> int:
        print_report(run(args, problems))
        for problem in problems:
            print(f"bench/submit.py: {problem}", file=sys.stderr)
        return 1 if problems else 0

    return run_main("bench/submit.py", body)


if __name__ == "__main__":
    sys.exit(main())
