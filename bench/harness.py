"""What the benchmarks share: a throwaway schema, runtimes and accounts, the real API
process, HTTP load (wrk or aiohttp), pgbench, smoke mode and the report's last line.

Every benchmark is run as `python bench/<name>.py`, which puts this folder first on
`sys.path`: `import harness` finds this file, and the project itself is the installed
`phantomflow` package. Every benchmark has `--smoke`: tiny sizes and a few seconds,
to prove it still runs (tests/test_benchmarks.py runs each one so); its figures mean
nothing. The last line a benchmark prints is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from aiohttp import web

from phantomflow.adapters.settings import Settings
from phantomflow.api.bootstrap import Runtime, build_runtime  # the benchmarks' one use of it
from phantomflow.api.schemas import load_render_request
from phantomflow.domain.script import MovieScript

REPO_ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
UNLIMITED = 1_000_000_000  # plan limits for the bench accounts

# Load generators, when installed (`apt-get install wrk`; pgbench comes with PostgreSQL).
WRK = os.environ.get("BENCH_WRK") or shutil.which("wrk")
PGBENCH = os.environ.get("BENCH_PGBENCH") or shutil.which("pgbench")

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

# Where a submission made in process says it came from (the API records the request's).
BENCH_ORIGIN = {"channel": "bench", "request_id": "bench", "key_prefix": "bench"}


@functools.cache
def tiny_request() -> tuple[MovieScript, str | None]:
    """TINY_SCRIPT as the API hands it to `submit_render`: (parsed script, webhook)."""
    script, webhook_uri, _exports, _metadata = load_render_request(dict(TINY_SCRIPT))
    return MovieScript.from_dict(script), webhook_uri


# One event-store connection per in-process runtime (one thread uses one at a time):
# with the production pool, 32 runtimes would exceed PostgreSQL's max_connections.
# `eventsourcing` reads PHANTOMFLOW_-prefixed variables before the plain ones.
IN_PROCESS_POOL_ENV = {
    "PHANTOMFLOW_POSTGRES_POOL_SIZE": "1",
    "PHANTOMFLOW_POSTGRES_MAX_OVERFLOW": "0",
}


class BenchError(Exception):
    """A failure with a message for the operator; no traceback needed."""


# --- small helpers --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def app_in_thread(app: web.Application) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 for as long as the block (an event loop
    in a daemon thread: the media servers renders download from); its base URL."""
    # Everything on the loop happens in its thread: the caller may be running a loop of
    # its own (an async benchmark or test).
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner.addresses[0][1]

    def serve() -> None:
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="http-server", daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (a server just started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError(f"nothing listens on port {port}")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def loadavg() -> float:
    """The 1-minute load average: how much other work skews this run's figures."""
    return round(os.getloadavg()[0], 2)


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


# --- command line and report ----------------------------------------------------------


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's option parser, described by the first line of its module's `doc`."""
    return argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)


def parse_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, **smoke_sizes: Any
) -> argparse.Namespace:
    """Parse with a `--smoke` option: tiny sizes (`smoke_sizes`, as option defaults, so
    an option given explicitly still wins) for a run of a few seconds."""
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, a few seconds: proves the benchmark runs; the figures mean nothing",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(**smoke_sizes)
        args = parser.parse_args(argv)
    return args


def report(lines: Sequence[str], figures: dict[str, Any]) -> None:
    """The human-readable lines, then every figure as one JSON line (the last line)."""
    if figures.get("smoke"):
        lines = [*lines, "  (smoke run: tiny sizes, the figures mean nothing)"]
    print("\n".join(lines))
    print(json.dumps(figures, sort_keys=True), flush=True)


def run_main(name: str, body: Callable[[], int | None]) -> int:
    """Run a benchmark's body (None means success): a BenchError is one line on stderr,
    not a traceback."""
    try:
        return body() or 0
    except BenchError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


def fmt(value: Any, spec: str) -> str:
    """`value` formatted, or n/a for a figure this run could not take."""
    return "n/a" if value is None else format(value, spec)


# --- PostgreSQL, runtimes and accounts ------------------------------------------------


def check_postgres(url: str = DATABASE_URL) -> None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        raise BenchError(
            f"PostgreSQL is not reachable at {url}: {error}".strip()
            + "\nStart it (e.g. `pg_ctlcluster 15 main start`) and run the benchmark again."
        ) from None


@contextlib.contextmanager
def bench_schema(url: str = DATABASE_URL) -> Iterator[str]:
    """A fresh schema `bench_<random>`, dropped at the end."""
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


def postgres_settings(schema: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=DATABASE_URL, database_schema=schema)


def new_runtime(settings: Settings, extra_env: dict[str, str] | None = None) -> Runtime:
    """A runtime with one event-store connection (IN_PROCESS_POOL_ENV): many of them
    fit in PostgreSQL's connection limit, like as many processes would."""
    with patched_environ({**(extra_env or {}), **IN_PROCESS_POOL_ENV}):
        return build_runtime(settings)


@contextlib.contextmanager
def postgres_workspace() -> Iterator[tuple[Settings, Path]]:
    """A fresh schema and scratch folder: (settings on them, the scratch folder)."""
    check_postgres()
    with (
        tempfile.TemporaryDirectory(prefix="phantomflow-bench-") as scratch,
        bench_schema() as schema,
    ):
        workdir = Path(scratch)
        yield postgres_settings(schema, workdir / "data"), workdir


@contextlib.contextmanager
def postgres_runtime() -> Iterator[Runtime]:
    """A runtime (production pool) on a fresh schema, closed and dropped at the end."""
    with postgres_workspace() as (settings, _workdir):
        runtime = build_runtime(settings)
        try:
            yield runtime
        finally:
            runtime.close()


def open_bench_account(runtime: Runtime, credits: int = UNLIMITED) -> Any:
    """An account with `credits` whose plan limits (requests a minute, jobs at once)
    never get in the way: the benchmarks measure work, not the limiter's refusals."""
    opened = runtime.app.open_account(plan="enterprise", credits=credits)
    runtime.app.change_plan(
        opened.account_id,
        "enterprise",
        requests_per_minute=UNLIMITED,
        concurrent_jobs=UNLIMITED,
    )
    return opened


def catch_up_read_models(runtime: Runtime) -> None:
    """Bring every read model up to the event store's head."""
    for runner in runtime.read_models:
        runner.catch_up()


def rebuild_read_models(runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Drop and rebuild every read model from zero: events handled and seconds, by name."""
    timed: dict[str, dict[str, Any]] = {}
    for runner in runtime.read_models:
        started = time.perf_counter()
        handled = runner.rebuild()
        timed[runner.follower.name] = {
            "events": handled,
            "seconds": round(time.perf_counter() - started, 3),
        }
    return timed


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

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BenchError(f"no VmRSS for process {self.process.pid}")

    def cpu_seconds(self) -> float:
        """User and system CPU the process has used so far."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"the API process exited with {self.process.returncode}:\n{self.log_tail()}"
            )

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
    settings: Settings,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> ApiProcess:
    """One `phantomflow api` process on the settings' schema; several given the same
    `port` share it (they listen with SO_REUSEPORT and the kernel spreads connections)."""
    env = {key: value for key, value in os.environ.items() if key not in IN_PROCESS_POOL_ENV}
    env.update(
        DATABASE_URL=DATABASE_URL,
        PHANTOMFLOW_DB_SCHEMA=settings.database_schema or "",
        REDIS_URL=REDIS_URL,
        # Rate counts of their own, beside whatever else shares this Redis.
        PHANTOMFLOW_REDIS_NAMESPACE=f"bench-{settings.database_schema}",
        PHANTOMFLOW_DATA_DIR=str(settings.data_dir),
        PHANTOMFLOW_LOG_LEVEL="WARNING",
    )
    env.update(extra_env or {})
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "phantomflow.api.cli", "api"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return ApiProcess(port=port, process=process, log_path=log_path)


async def wait_until_answering(api: ApiProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            api.check_alive()
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


@contextlib.contextmanager
def running_apis(
    settings: Settings, workdir: Path, count: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[list[ApiProcess]]:
    """`count` API processes on one port, answering; stopped at the end."""
    port = free_port()
    apis: list[ApiProcess] = []
    try:
        for number in range(count):
            apis.append(start_api(settings, workdir / f"api{number}.log", extra_env, port))
        for api in apis:
            asyncio.run(wait_until_answering(api))
        yield apis
    finally:
        for api in apis:
            api.stop()


# --- HTTP load ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """The request a load sends over and over; sender i uses key i mod len(keys)."""

    method: str
    path: str
    keys: Sequence[str]
    body: bytes | None = None
    expected: int = 200

    @classmethod
    def render(cls, keys: Sequence[str]) -> Call:
        return cls("POST", "/api/render", keys, json.dumps(TINY_SCRIPT).encode(), 202)

    @classmethod
    def floor(cls) -> Call:
        """`GET /api/jobs` with an unknown key, answered 401 after one indexed read and
        no write: the most this client and API process can do on this machine."""
        return cls("GET", "/api/jobs", ["ve_live_unknown"], None, 401)


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
    def done(self) -> int:
        return len(self.latencies) if self.answered is None else self.answered

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed else 0.0

    def percentiles_ms(self) -> tuple[float, float, float]:
        """p50, p99 and max latency in milliseconds."""
        if self.wrk_percentiles_ms is not None:
            return self.wrk_percentiles_ms
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan, math.nan, math.nan
        return (
            percentile(ordered, 0.50) * 1000,
            percentile(ordered, 0.99) * 1000,
            ordered[-1] * 1000,
        )

    def half_rates(self) -> tuple[float, float]:
        """Requests/s over the first and the second half of the requests (NaN from wrk,
        which does not report each request)."""
        if not self.completions:
            return math.nan, math.nan
        done = sorted(self.completions)
        middle = len(done) // 2
        first = middle / done[middle - 1] if middle and done[middle - 1] > 0 else math.nan
        span = done[-1] - done[middle - 1] if middle else math.nan
        second = (len(done) - middle) / span if span and span > 0 else math.nan
        return first, second

    def add(self, other: HttpResult) -> None:
        """Count another run of the same call into this one (aiohttp runs only)."""
        self.elapsed += other.elapsed
        self.latencies += other.latencies
        self.completions += other.completions
        self.failures += other.failures


async def fire(base_url: str, call: Call, requests: int, concurrency: int) -> HttpResult:
    """Send `call` `requests` times from `concurrency` senders on one aiohttp session."""
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
            headers = {"x-api-key": api_key, "content-type": "application/json"}
            while issued < requests:
                issued += 1
                sent = time.perf_counter()
                try:
                    async with session.request(
                        call.method, base_url + call.path, data=call.body, headers=headers
                    ) as response:
                        answer = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    failures.append(f"{type(error).__name__}: {error}")
                    continue
                now = time.perf_counter()
                if status != call.expected:
                    failures.append(f"HTTP {status}: {answer[:300].decode(errors='replace')}")
                    continue
                latencies.append(now - sent)
                completions.append(now - start)

        keys = call.keys
        await asyncio.gather(*(sender(keys[i % len(keys)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return HttpResult(elapsed=elapsed, latencies=latencies, completions=completions,
                      failures=failures)  # fmt: skip


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


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def fire_wrk(
    base_url: str, call: Call, seconds: int, concurrency: int, workdir: Path
) -> HttpResult:
    """The same load from wrk, a C client (as pgbench is): its own CPU cost is small
    next to a Python client's, which on 2 cores competes with the API for a core.

    wrk counts answers by class only: with an expected 2xx every non-2xx is a failure;
    with an expected 4xx (the floor) every answer counts."""
    if WRK is None:
        raise BenchError("wrk is not installed (`apt-get install wrk`)")
    script = workdir / f"wrk_{uuid.uuid4().hex[:8]}.lua"
    script.write_text(
        WRK_SCRIPT.format(
            keys="{" + ", ".join(_lua_string(key) for key in call.keys) + "}",
            body=_lua_string((call.body or b"").decode()),
            method=call.method,
            path=call.path,
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
    success = 200 <= call.expected < 300
    good = answered - figures["non_2xx"] if success else answered
    failures = ["HTTP non-2xx answer"] * figures["non_2xx"] if success else []
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


def load(base_url: str, call: Call, args: argparse.Namespace, workdir: Path) -> HttpResult:
    """`call` from the chosen client: wrk for `args.seconds`, or aiohttp for
    `args.requests`, from `args.concurrency` connections."""
    if args.client == "wrk":
        return fire_wrk(base_url, call, args.seconds, args.concurrency, workdir)
    return asyncio.run(fire(base_url, call, args.requests, args.concurrency))


def add_client_options(parser: argparse.ArgumentParser, requests: int) -> None:
    """--client, --seconds, --requests and --concurrency, for benchmarks that use `load`."""
    parser.add_argument(
        "--client",
        choices=("wrk", "aiohttp"),
        default="wrk" if WRK else "aiohttp",
        help="HTTP load generator: wrk (C, like pgbench; the default when installed,"
        " `apt-get install wrk`) runs --seconds; aiohttp sends --requests",
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk's duration per phase")
    parser.add_argument("--requests", type=int, default=requests, help="aiohttp's requests")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")


# --- pgbench --------------------------------------------------------------------------

TPS_LINE = re.compile(
    r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)",
    re.MULTILINE,
)


def pgbench(
    schema: str, script: str, setup_sql: str, concurrency: int, seconds: int, workdir: Path
) -> float:
    """Transactions a second of pgbench running `script` in `schema` (after `setup_sql`)."""
    if PGBENCH is None:
        raise BenchError("pgbench is not installed (it comes with PostgreSQL)")
    script_path = workdir / f"pgbench_{uuid.uuid4().hex[:8]}.sql"
    script_path.write_text(script)
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"SET search_path = {schema}")
        conn.execute(setup_sql)
    info = psycopg.conninfo.conninfo_to_dict(DATABASE_URL)
    env = dict(os.environ, PGOPTIONS=f"-c search_path={schema}")
    command = [
        PGBENCH, "-n", "-h", str(info.get("host", "127.0.0.1")),
        "-p", str(info.get("port", 5432)), "-U", str(info.get("user", "postgres")),
        "-c", str(concurrency), "-j", str(min(2, concurrency)),
        "-T", str(seconds), "-f", str(script_path), str(info.get("dbname", "test")),
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
