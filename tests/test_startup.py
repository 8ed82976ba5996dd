"""Processes that start at the same moment on a fresh PostgreSQL database all come up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import POSTGRES_URL

BUILD = "from phantomflow.api.bootstrap import build_runtime; from phantomflow.adapters.settings import Settings; " \
    "build_runtime(Settings.from_env()).close()"  # fmt: skip


def test_processes_starting_together_create_the_tables_once_without_colliding(
    postgres_schema: str, tmp_path: Path
):
    env = {
        **os.environ,
        "DATABASE_URL": POSTGRES_URL,
        "PHANTOMFLOW_DB_SCHEMA": postgres_schema,
        "PHANTOMFLOW_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    starting = [
        subprocess.Popen([sys.executable, "-c", BUILD], env=env, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    failures = [p.communicate(timeout=120)[1].decode() for p in starting if p.wait() != 0]
    assert failures == []


def listening_sockets(port: int) -> int:
    """TCP sockets in LISTEN on 127.0.0.1:`port`, from /proc/net/tcp."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1] == local and row[3] == "0A")


def test_api_processes_share_one_port_and_one_can_stop_while_the_other_answers(
    tmp_path: Path, postgres_schema: str, redis_url: str, redis_namespace: str
):
    from tests.conftest import free_port
    from tests.processes import RunningSystem, base_env

    port = free_port()
    env = {
        **base_env(tmp_path),
        "DATABASE_URL": POSTGRES_URL,
        "PHANTOMFLOW_DB_SCHEMA": postgres_schema,
        "REDIS_URL": redis_url,
        "PHANTOMFLOW_REDIS_NAMESPACE": redis_namespace,
    }
    system = RunningSystem(env=env, base_url=f"http://127.0.0.1:{port}")
    try:
        for name in ("first", "second"):
            system.start("api", "--host", "127.0.0.1", "--port", str(port), log=tmp_path / name)
        first, second = system.processes
        deadline = time.monotonic() + 60
        while listening_sockets(port) < 2 and time.monotonic() < deadline:
            if first.poll() is not None or second.poll() is not None:
                break  # one could not listen
            time.sleep(0.1)
        assert listening_sockets(port) == 2, system.output()
        assert (first.poll(), second.poll()) == (None, None), system.output()

        first.terminate()
        first.wait(15)
        system.wait_until_up(timeout=5)  # the second still answers on the port
        assert second.poll() is None
    finally:
        system.stop()
