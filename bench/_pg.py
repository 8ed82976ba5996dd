"""Shared by the benchmarks: a throwaway PostgreSQL schema and a runtime on it."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

from phantomflow.adapters.settings import Settings
from phantomflow.api.bootstrap import Runtime, build_runtime

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def postgres_runtime() -> Iterator[Runtime]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    runtime = build_runtime(
        Settings(
            data_dir=Path(tempfile.mkdtemp(prefix="bench-")),
            database_url=DATABASE_URL,
            database_schema=schema,
        )
    )
    try:
        yield runtime
    finally:
        runtime.close()
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
