"""Benchmark render submissions on PostgreSQL: real HTTP, the service layer alone, pgbench.

    python bench/submit.py [--requests N] [--concurrency C] [--accounts K] [--env KEY=VALUE]
                           [--client wrk|aiohttp] [--seconds S] [--api-processes P]

Runs in a fresh schema `bench_<random>` of the `test` database (dropped at the end):

1. HTTP: the real API process (`python -m phantomflow.api.cli api`; `--api-processes P` starts P
   of them on one port), `POST /api/render` of a tiny script from C concurrent
   connections, by wrk for `--seconds` when it is installed (a C client, as pgbench
   is), else by an aiohttp session for N requests; every answer must be 202. Prints
   submissions/s, p50/p99 latency, and the jobs the event store recorded meanwhile.
2. In-process: `runtime.app.submit_render` from C threads, each with a runtime of its
   own (so its own connections), N submissions. Prints submissions/s.
3. pgbench: a comparable two-row transaction (BEGIN; one INSERT into each of two
   tables with ~300 random bytes; COMMIT) at the same concurrency, plus the same
   transaction behind `LOCK TABLE ... IN EXCLUSIVE MODE`, which is what
   `eventsourcing` does on every insert. Prints tps and whether HTTP reaches at least
   half of pgbench's rate.

By default every submission charges one account (each one reloads and saves that
account, so concurrent senders meet version conflicts); `--accounts K` spreads them
over K accounts, `--env` tries a setting (e.g. PHANTOMFLOW_AGGREGATE_CACHE_MAXSIZE=1000)
without changing code. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import psycopg
from eventsourcing.persistence import RecordConflictError
from eventsourcing.utils import get_topic

REPO_ROOT = Path(__file__).resolve().parent.parent
# `python bench/submit.py` puts bench/ first on sys.path, where bench/projections.py
# would shadow the `projections` package: the project root goes first instead.
_BENCH_DIR = str(Path(__file__).resolve().parent)
sys.path[:] = [str(REPO_ROOT)] + [
    entry for entry in sys.path if entry not in (str(REPO_ROOT), _BENCH_DIR)
]

from phantomflow.adapters.settings import Settings  # noqa: E402
from phantomflow.api.bootstrap import Runtime, build_runtime  # noqa: E402
from phantomflow.api.schemas import load_render_request  # noqa: E402
from phantomflow.domain.jobs import RenderJob  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/15"  # the api process's rate-limit counters
PGBENCH = shutil.which("pgbench") or "/usr/bin/pgbench"
TARGET_RATIO = 0.5
UNLIMITED = 1_000_000_000  # plan limits for the bench accounts

# Same shape as tests/conftest.py TINY_SCRIPT: 320x240, low quality, 1 s.
TINY_SCRIPT: dict[str, Any] = {
    "width": 320,
    "height": 240,
    "fps": 15,
    "quality": "low",
    "scenes": [
        {
            "duration": 1,
            "background": "#FF0000",
            "elements": [{"type": "text", "text": "Hello", "font_size": 24}],
        }
    ],
}

# One event-store connection per in-process runtime (one thread uses one at a time):
# with the production pool, 32 runtimes would exceed PostgreSQL's max_connections.
# `eventsourcing` reads PHANTOMFLOW_-prefixed variables before the plain ones.
IN_PROCESS_POOL_ENV = {
    "PHANTOMFLOW_POSTGRES_POOL_SIZE": "1",
    "PHANTOMFLOW_POSTGRES_MAX_OVERFLOW": "0",
}

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
CREATE TABLE a (id bigserial PRIMARY KEY, originator uuid NOT NULL, version int NOT NULL,
                topic text NOT NULL, state bytea NOT NULL);
CREATE TABLE b (id bigserial PRIMARY KEY, originator uuid NOT NULL, version int NOT NULL,
                topic text NOT NULL, state bytea NOT NULL);
"""
TPS_LINE = re.compile(
    r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)",
    re.MULTILINE,
)


class BenchError(Exception):
    """A failure with a message for the operator; no traceback needed."""


# --- helpers --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def check_postgres(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        raise BenchError(
            f"PostgreSQL is not reachable at {url}: {error}".strip()
            + "\nStart it (e.g. `pg_ctlcluster 15 main start`) and run the benchmark again."
        ) from None


@contextlib.contextmanager
def bench_schema(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        except psycopg.Error as error:
            print(f"warning: could not drop schema {schema}: {error}", file=sys.stderr)


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


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


def open_bench_account(runtime: Runtime, credits: int) -> Any:
    """An account with `credits` whose plan limits (requests a minute, jobs at once)
    never get in the way: the benchmark measures submissions, not the limiter's 429s."""
    opened = runtime.app.open_account(plan="enterprise", credits=credits)
    change_plan = getattr(runtime.app, "change_plan", None)
    if change_plan is not None:
        change_plan(
            opened.account_id,
            "enterprise",
            requests_per_minute=UNLIMITED,
            concurrent_jobs=UNLIMITED,
        )
    return opened


# --- the API process ------------------------------------------------------------------


@dataclass
class ApiProcess:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_api(
    schema: str, data_dir: Path, log_path: Path, extra_env: dict[str, str], port: int
) -> ApiProcess:
    """One `phantomflow api` process; several share `port` (they listen with SO_REUSEPORT
    and the kernel spreads connections over them)."""
    env = {key: value for key, value in os.environ.items() if key not in IN_PROCESS_POOL_ENV}
    env.update(
        DATABASE_URL=DATABASE_URL,
        PHANTOMFLOW_DB_SCHEMA=schema,
        REDIS_URL=REDIS_URL,
        PHANTOMFLOW_DATA_DIR=str(data_dir),
        PHANTOMFLOW_LOG_LEVEL="WARNING",
    )
    env.update(extra_env)
    command = [
        sys.executable,
        "-m",
        "phantomflow.api.cli",
        "api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return ApiProcess(port=port, process=process, log_path=log_path)


async def wait_until_answering(api: ApiProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if api.process.poll() is not None:
                raise BenchError(
                    f"the API process exited with {api.process.returncode}:\n{api.log_tail()}"
                )
            try:
                async with session.get(
                    f"{api.base_url}/api/jobs",
                    headers={"x-api-key": "ve_live_not-a-key"},
                    timeout=aiohttp.ClientTimeout(total=2),
                ) as response:
                    if response.status == 401:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the API did not answer within {timeout:.0f} s:\n{api.log_tail()}"
                )
            await asyncio.sleep(0.2)


# --- HTTP load ------------------------------------------------------------------------


@dataclass
class HttpResult:
    elapsed: float
    latencies: list[float]
    completions: list[float]  # seconds since start, one per request
    failures: list[str] = field(default_factory=list)
    # From wrk, which reports counts and percentiles rather than each request.
    answered: int | None = None
    wrk_percentiles_ms: tuple[float, float, float] | None = None

    @property
    def rate(self) -> float:
        done = len(self.latencies) if self.answered is None else self.answered
        return done / self.elapsed

    def percentiles_ms(self) -> tuple[float, float, float]:
        """p50, p99 and max latency in milliseconds."""
        if self.wrk_percentiles_ms is not None:
            return self.wrk_percentiles_ms
        ordered = sorted(self.latencies)
        return (
            percentile(ordered, 0.50) * 1000,
            percentile(ordered, 0.99) * 1000,
            ordered[-1] * 1000,
        )

    def half_rates(self) -> tuple[float, float]:
        """Submissions/s over the first and the second half of the requests (NaN from
        wrk, which does not report each request)."""
        if not self.completions:
            return math.nan, math.nan
        done = sorted(self.completions)
        middle = len(done) // 2
        first = middle / done[middle - 1] if middle and done[middle - 1] > 0 else math.nan
        span = done[-1] - done[middle - 1] if middle else math.nan
        second = (len(done) - middle) / span if span and span > 0 else math.nan
        return first, second


async def fire(
    base_url: str,
    api_keys: Sequence[str],
    requests: int,
    concurrency: int,
    floor: bool = False,
) -> HttpResult:
    """Send `requests` submissions from `concurrency` senders; sender i uses key i mod len.

    With `floor`, send `GET /api/jobs` with an unknown key instead (answered 401 by the
    auth middleware): the same client and server with no database write, i.e. the most
    this client and one API process can do on this machine.
    """
    body = None if floor else json.dumps(TINY_SCRIPT).encode()
    url = f"{base_url}/api/jobs" if floor else f"{base_url}/api/render"
    method = "GET" if floor else "POST"
    expected = 401 if floor else 202
    latencies: list[float] = []
    completions: list[float] = []
    failures: list[str] = []
    issued = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    # Generous: under contention a single submission can take over a minute.
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()

        async def sender(api_key: str) -> None:
            nonlocal issued
            headers = {"x-api-key": "ve_live_unknown" if floor else api_key,
                       "content-type": "application/json"}  # fmt: skip
            while issued < requests:
                issued += 1
                sent = time.perf_counter()
                try:
                    async with session.request(method, url, data=body, headers=headers) as response:
                        answer = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    failures.append(f"{type(error).__name__}: {error}")
                    continue
                now = time.perf_counter()
                if status != expected:
                    failures.append(f"HTTP {status}: {answer[:300].decode(errors='replace')}")
                    continue
                latencies.append(now - sent)
                completions.append(now - start)

        await asyncio.gather(*(sender(api_keys[i % len(api_keys)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return HttpResult(elapsed=elapsed, latencies=latencies, completions=completions,
                      failures=failures)  # fmt: skip


WRK = shutil.which("wrk")

# wrk's Lua hooks: `request` sends the body with the keys in turn; `done` prints the
# figures as one JSON line (times in microseconds).
WRK_SCRIPT = """\
local keys = {keys}
local body = {body}
local method = "{method}"
local path = "{path}"
local i = 0
request = function()
  i = i + 1
  return wrk.format(method, path,
    {{["x-api-key"] = keys[i % #keys + 1], ["content-type"] = "application/json"}}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d,'
    .. ' "p50_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def fire_wrk(
    base_url: str,
    api_keys: Sequence[str],
    seconds: int,
    concurrency: int,
    workdir: Path,
    floor: bool = False,
) -> HttpResult:
    """The same load from wrk, a C client (as pgbench is): its own CPU cost is small
    next to a Python client's, which on 2 cores competes with the API for a core."""
    assert WRK is not None
    script = workdir / ("wrk_floor.lua" if floor else "wrk.lua")
    keys = ["ve_live_unknown"] if floor else list(api_keys)
    script.write_text(
        WRK_SCRIPT.format(
            keys="{" + ", ".join(lua_string(key) for key in keys) + "}",
            body=lua_string("" if floor else json.dumps(TINY_SCRIPT)),
            method="GET" if floor else "POST",
            path="/api/jobs" if floor else "/api/render",
        )
    )
    command = [
        WRK, "-t", str(min(2, concurrency)), "-c", str(concurrency), "-d", f"{seconds}s",
        "--timeout", "60s", "-s", str(script), base_url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    found = re.search(r"^WRK_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not found:
        raise BenchError(f"wrk failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    figures = json.loads(found.group(1))
    answered = figures["requests"] - figures["socket_errors"]
    # The floor's answers are all 401: wrk counts them as non-2xx, which is expected.
    good = answered if floor else answered - figures["non_2xx"]
    failures = [] if floor else ["HTTP non-2xx answer"] * figures["non_2xx"]
    failures += ["socket error"] * figures["socket_errors"]
    return HttpResult(
        elapsed=figures["duration_us"] / 1e6,
        latencies=[],
        completions=[],
        failures=failures,
        answered=good,
        wrk_percentiles_ms=(
            figures["p50_us"] / 1000,
            figures["p99_us"] / 1000,
            figures["max_us"] / 1000,
        ),
    )


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
    script, webhook_uri = load_render_request(dict(TINY_SCRIPT))
    origin = {"channel": "bench", "request_id": "bench", "key_prefix": "bench"}
    lock = threading.Lock()
    issued = [0]
    conflicts = [0]
    errors: list[BaseException] = []
    failures: list[str] = []
    runtimes: list[Runtime] = []
    with patched_environ({**extra_env, **IN_PROCESS_POOL_ENV}):
        try:
            for _ in range(concurrency):  # appended one by one, so all get closed
                runtime = build_runtime(settings)
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
                        runtime.app.submit_render(account_id, script, webhook_uri, origin)
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
                        runtime.app.submit_render(account_id, script, webhook_uri, origin)
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


# --- pgbench --------------------------------------------------------------------------


def pgbench(schema: str, concurrency: int, seconds: int, workdir: Path, lock: bool) -> float:
    script = workdir / ("pgbench_locked.sql" if lock else "pgbench.sql")
    script.write_text(
        PGBENCH_SCRIPT.format(lock="LOCK TABLE a IN EXCLUSIVE MODE;\n" if lock else "")
    )
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute("DROP TABLE IF EXISTS a, b")
        conn.execute(PGBENCH_TABLES)
    env = dict(os.environ, PGOPTIONS=f"-c search_path={schema}")
    command = [
        PGBENCH, "-n", "-h", "127.0.0.1", "-U", "postgres",
        "-c", str(concurrency), "-j", str(min(2, concurrency)),
        "-T", str(seconds), "-f", str(script), "test",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
        )
    except FileNotFoundError:
        raise BenchError(f"pgbench not found at {PGBENCH}") from None
    found = TPS_LINE.search(done.stdout)
    if done.returncode != 0 or not found:
        raise BenchError(
            f"pgbench failed (exit {done.returncode}):\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return float(found.group(1))


# --- main -----------------------------------------------------------------------------


def run(args: argparse.Namespace, problems: list[str]) -> dict[str, Any]:
    """Run every phase; returns the figures, appends anything that went wrong to `problems`."""
    check_postgres(DATABASE_URL)
    figures: dict[str, Any] = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "accounts": args.accounts,
        "warmup": args.warmup,
        "env": args.env,
        "client": args.client,
        "seconds": args.seconds,
        "api_processes": args.api_processes,
        "cpus": os.cpu_count(),
        # Other work on the machine skews every figure; the 1-minute load says how much.
        "loadavg_at_start": round(os.getloadavg()[0], 2),
    }
    with (
        tempfile.TemporaryDirectory(prefix="phantomflow-bench-") as tmp,
        bench_schema(DATABASE_URL) as schema,
    ):
        workdir = Path(tmp)
        figures["schema"] = schema
        settings = Settings(
            data_dir=workdir / "data", database_url=DATABASE_URL, database_schema=schema
        )
        # Enough for any run: wrk sends for a time, not a count.
        credits = UNLIMITED
        setup = build_runtime(settings)
        try:
            http_accounts = [open_bench_account(setup, credits) for _ in range(args.accounts)]
            local_accounts = [open_bench_account(setup, credits) for _ in range(args.accounts)]
        finally:
            setup.close()
        api_keys = [account.api_key for account in http_accounts]

        # 1. HTTP, against the real API process(es).
        port = free_port()
        apis = [
            start_api(schema, workdir / "data", workdir / f"api{i}.log", args.env, port)
            for i in range(args.api_processes)
        ]
        try:
            for api in apis:
                asyncio.run(wait_until_answering(api))
            base_url = apis[0].base_url
            warm = asyncio.run(fire(base_url, api_keys, args.warmup, args.concurrency))
            if warm.failures:
                raise BenchError(f"warm-up request failed: {warm.failures[0]}")
            rollbacks_before = rollbacks(DATABASE_URL)
            recorded_before = submissions_recorded(DATABASE_URL, schema)
            if args.client == "wrk":
                http = fire_wrk(base_url, api_keys, args.seconds, args.concurrency, workdir)
            else:
                http = asyncio.run(fire(base_url, api_keys, args.requests, args.concurrency))
            figures["http_db_rollbacks"] = rollbacks(DATABASE_URL) - rollbacks_before
            # Cross-check of the client's count: what the event store holds.
            figures["http_submissions_recorded"] = (
                submissions_recorded(DATABASE_URL, schema) - recorded_before
            )
            if args.client == "wrk":
                floor = fire_wrk(
                    base_url, api_keys, args.seconds, args.concurrency, workdir, floor=True
                )
            else:
                floor = asyncio.run(
                    fire(base_url, api_keys, args.requests, args.concurrency, floor=True)
                )
            figures["http_floor_per_s"] = round(floor.rate, 1)
            for api in apis:
                if api.process.poll() is not None:
                    raise BenchError(f"an API process died:\n{api.log_tail()}")
        finally:
            for api in apis:
                api.stop()
        if http.failures:
            problems.append(
                f"{len(http.failures)} HTTP submissions did not answer 202;"
                f" first: {http.failures[0]}\nthe API's log ends:\n{apis[0].log_tail(40)}"
            )
        if not http.rate:
            raise BenchError(f"no HTTP submission succeeded; first failure: {http.failures[0]}")
        p50, p99, slowest = http.percentiles_ms()
        first_half, second_half = http.half_rates()
        figures.update(
            http_submissions_per_s=round(http.rate, 1),
            http_p50_ms=round(p50, 2),
            http_p99_ms=round(p99, 2),
            http_max_ms=round(slowest, 2),
            http_rate_first_half=round(first_half, 1),
            http_rate_second_half=round(second_half, 1),
            http_elapsed_s=round(http.elapsed, 2),
            http_non_202=len(http.failures),
        )

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
        tps = pgbench(schema, args.concurrency, args.pgbench_seconds, workdir, lock=False)
        try:
            locked_tps: float | None = round(
                pgbench(schema, args.concurrency, args.pgbench_seconds, workdir, lock=True), 1
            )
        except BenchError as error:
            problems.append(f"pgbench with the table lock: {error}")
            locked_tps = None
        ratio = http.rate / tps
        figures.update(
            pgbench_tps=round(tps, 1),
            pgbench_locked_tps=locked_tps,
            http_to_pgbench_ratio=round(ratio, 3),
            target_ratio=TARGET_RATIO,
            target_met=ratio >= TARGET_RATIO,
        )
    return figures


def _num(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def halves(f: dict[str, Any]) -> str:
    """The aiohttp client's rates over each half of the run (wrk reports none)."""
    first, second = f["http_rate_first_half"], f["http_rate_second_half"]
    if math.isnan(first) or math.isnan(second):
        return ""
    return f"first half {first:.1f} /s, second half {second:.1f} /s; "


def report(f: dict[str, Any]) -> None:
    met = "MET" if f["target_met"] else "NOT MET"
    lines = [
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
        f"  HTTP floor (401 answers) {f['http_floor_per_s']:>8.1f} /s"
        "   same client and process(es), one read, no write",
        f"  in-process submit       {_num(f['inprocess_submissions_per_s'], '>9.1f')} /s"
        f"   ({_num(f['inprocess_conflicts'], '')} version conflicts retried,"
        f" {_num(f['inprocess_failures'], '')} failed)",
        f"  pgbench 2-row insert    {f['pgbench_tps']:>9.1f} tps",
        f"  pgbench + table lock    {_num(f['pgbench_locked_tps'], '>9.1f')} tps",
        f"  HTTP / pgbench          {f['http_to_pgbench_ratio']:>9.3f}"
        f"   target >= {f['target_ratio']}: {met}",
        "",
    ]
    print("\n".join(lines))
    print(json.dumps(f, sort_keys=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000, help="submissions per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders")
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        help="accounts to spread submissions over (sender i uses account i mod this)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="warm-up submissions")
    parser.add_argument(
        "--client",
        choices=("wrk", "aiohttp"),
        default="wrk" if WRK else "aiohttp",
        help="HTTP load generator: wrk (C, like pgbench; the default when installed,"
        " `apt-get install wrk`) runs --seconds; aiohttp sends --requests",
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk's duration per phase")
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
    args = parser.parse_args(argv)
    try:
        args.env = dict(item.split("=", 1) for item in args.env)
    except ValueError:
        parser.error("--env takes KEY=VALUE")
    if args.requests < 2 or args.concurrency < 1 or args.warmup < 0 or args.accounts < 1:
        parser.error("need --requests >= 2, --concurrency >= 1, --accounts >= 1, --warmup >= 0")
    problems: list[str] = []
    try:
        figures = run(args, problems)
    except BenchError as error:
        print(f"bench/submit.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/submit.py: interrupted", file=sys.stderr)
        return 130
    report(figures)
    for problem in problems:
        print(f"bench/submit.py: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
