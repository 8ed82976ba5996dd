"""PhantomFlow as its operators run it: processes started by the CLI, for tests.

`RunningSystem` starts `phantomflow serve`, or `api`, `projections` and `worker`, each in
a process group of its own, so a test can stop one gracefully, or `kill -9` it with
everything it started (Dramatiq's worker processes, FFmpeg), as when its machine dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import POSTGRES_URL, free_port

PHANTOMFLOW = [sys.executable, "-m", "phantomflow.api.cli"]


@dataclass
class RunningSystem:
    env: dict[str, str]
    base_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    # The processes started under a name (the name of their log file), latest first.
    named: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, *args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
        """Start one process; `env` adds to the system's environment for it alone."""
        handle = open(log, "ab")  # noqa: SIM115 - closed with the process
        self.logs.append(log)
        process = subprocess.Popen(
            [*PHANTOMFLOW, *args],
            env={**self.env, **env},
            stdout=handle,
            stderr=handle,
            start_new_session=True,  # its own process group: see kill()
        )
        self.processes.append(process)
        self.named[log.name] = process
        return process

    def start_worker(self, log: Path) -> subprocess.Popen[bytes]:
        """A `phantomflow worker` of one process and one thread."""
        return self.start("worker", "--processes", "1", "--threads", "1", log=log)

    def kill(self, name: str) -> None:
        """`kill -9` the process started with log `name`, and everything it started."""
        process = self.named[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def kill_process_of(self, pid: int) -> str:
        """`kill -9` whichever started process `pid` belongs to (a Dramatiq worker
        process is the child of a `phantomflow worker`); return its name."""
        group = os.getpgid(pid)
        for name, process in self.named.items():
            if process.pid == group:
                self.kill(name)
                return name
        raise LookupError(f"process {pid} was not started by this system")

    def kill_all(self) -> None:
        """`kill -9` every process (a drill's end: nothing left to shut down cleanly)."""
        for name, process in self.named.items():
            if process.poll() is None:
                self.kill(name)
        self.stop()

    def cli(self, *args: str) -> Any:
        done = subprocess.run(
            [*PHANTOMFLOW, *args], env=self.env, capture_output=True, check=True, timeout=60
        )
        return json.loads(done.stdout)

    def cli_status(self, *args: str) -> tuple[int, str]:
        """Exit code and output of a command that prints text (`audit verify`)."""
        done = subprocess.run(
            [*PHANTOMFLOW, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        return done.returncode, done.stdout + done.stderr

    def wait_until_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                request("GET", f"{self.base_url}/api/jobs", api_key="ve_live_probe")
            except urllib.error.HTTPError as error:
                if error.code == 401:
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the API did not come up:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for process in self.processes:
            # Whatever a process left behind in its group (a worker's FFmpeg).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


def request(
    method: str,
    url: str,
    api_key: str,
    body: dict | None = None,
    timeout: float = 30,
) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("x-api-key", api_key)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return json.loads(response.read())


def call(
    method: str, url: str, api_key: str, body: Any = None, timeout: float = 30
) -> tuple[int, Any, dict[str, str]]:
    """(status, JSON body or None, headers) of any answer, errors included; status 0
    when no answer came (refused, reset, timed out)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("x-api-key", api_key)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, dict(error.headers)
    except OSError:
        return 0, None, {}
    try:
        return status, json.loads(raw) if raw else None, headers
    except ValueError:
        return status, raw.decode(errors="replace"), headers


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "PHANTOMFLOW_DB_SCHEMA")
    }
    env["PHANTOMFLOW_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    return env


def start_embedded(tmp_path: Path, env: dict[str, str]) -> RunningSystem:
    """`phantomflow serve`: the whole system in one process."""
    port = free_port()
    system = RunningSystem(env=env, base_url=f"http://127.0.0.1:{port}")
    system.start("serve", "--port", str(port), log=tmp_path / "serve.log")
    return system


def production_env(
    tmp_path: Path,
    env: dict[str, str],
    postgres_schema: str | None,
    redis_url: str,
    redis_namespace: str,
    port: int,
    database_url: str = POSTGRES_URL,
) -> dict[str, str]:
    found = {
        **env,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PHANTOMFLOW_REDIS_NAMESPACE": redis_namespace,
        "PHANTOMFLOW_OUTPUT_DIR": str(tmp_path / "shared-outputs"),
        "PHANTOMFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    if postgres_schema:
        found["PHANTOMFLOW_DB_SCHEMA"] = postgres_schema
    return found


def start_production(
    tmp_path: Path,
    env: dict[str, str],
    postgres_schema: str | None,
    redis_url: str,
    redis_namespace: str,
    database_url: str = POSTGRES_URL,
    workers: int = 1,
    apis: int = 1,
) -> RunningSystem:
    """`phantomflow api` (several share one port), `projections` and `worker` on
    PostgreSQL and Redis. The logs (and the names `kill` takes) are api.log,
    projections.log, worker.log (api-2.log, worker-2.log, … for more than one)."""
    port = free_port()
    env = production_env(
        tmp_path, env, postgres_schema, redis_url, redis_namespace, port, database_url
    )
    system = RunningSystem(env=env, base_url=f"http://127.0.0.1:{port}")
    for number in range(1, apis + 1):
        name = "api.log" if number == 1 else f"api-{number}.log"
        system.start("api", "--host", "127.0.0.1", "--port", str(port), log=tmp_path / name)
    system.start("projections", log=tmp_path / "projections.log")
    for number in range(1, workers + 1):
        system.start_worker(tmp_path / ("worker.log" if number == 1 else f"worker-{number}.log"))
    return system
