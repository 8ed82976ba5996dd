"""Processes that start at the same moment on a fresh PostgreSQL database all come up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import POSTGRES_URL

BUILD = "from adapters.bootstrap import build_runtime; from adapters.settings import Settings; " \
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
