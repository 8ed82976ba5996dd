"""Shared fixtures: real SQLite, PostgreSQL and Redis, each test isolated.

PostgreSQL tests get a schema of their own, dropped afterwards. Tests that need a
service skip with the reason when it is down, except in CI (CI=true), where a missing
service is a failure: CI must never pass by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from phantomflow.adapters.settings import Settings
from phantomflow.api.bootstrap import Runtime, build_runtime
from phantomflow.projections.audit import reconcile, report
from tests.services import PrivatePostgres, PrivateRedis, postgres_bin
from tests.services import free_port as free_port  # used by many tests from here

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

TINY_SCRIPT = {
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


def service_missing(what: str) -> None:
    """Skip outside CI, fail in CI."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not reachable", pytrace=False)
    pytest.skip(f"{what} is not reachable")


def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    if not postgres_available():
        service_missing(f"PostgreSQL at {POSTGRES_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def redis_url() -> str:
    if not redis_available():
        service_missing(f"Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A Redis namespace (PHANTOMFLOW_REDIS_NAMESPACE) of this test's own, its keys
    deleted afterwards: test runs sharing one Redis never see each other's queues."""
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{namespace}:*"):
        client.delete(key)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, not yet started: the test may stop it, restart
    it empty, or start it late."""
    if shutil.which("redis-server") is None:
        service_missing("redis-server (to start a private Redis)")
    server = PrivateRedis()
    yield server
    server.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own, started: the test may stop or restart it."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        service_missing("PostgreSQL's server programs (initdb, pg_ctl)")
    assert bin_dir is not None
    server = PrivatePostgres(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def postgres_settings(tmp_path: Path, postgres_schema: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=POSTGRES_URL,
        database_schema=postgres_schema,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Each test using this runs once on each event store."""
    return request.getfixturevalue(f"{request.param}_settings")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    built = build_runtime(settings)
    yield built
    try:
        assert_credits_reconcile(built)
    finally:
        built.close()


@pytest.fixture
def sqlite_runtime(sqlite_settings: Settings) -> Iterator[Runtime]:
    """The embedded default's runtime only, for tests of the API's shape, not its stores."""
    built = build_runtime(sqlite_settings)
    yield built
    built.close()


def assert_credits_reconcile(runtime: Runtime) -> None:
    """What `phantomflow audit verify` checks, after every test that used a runtime:
    each account's replayed balance, its ledger and its grants less its jobs' costs
    agree."""
    runtime.ledger_runner.catch_up()
    checks = reconcile(runtime.app, runtime.ledger)
    disagreeing = [check for check in checks if not check.agrees]
    assert not disagreeing, report(disagreeing)


# Real servers of the protocols PhantomFlow talks to, started once per session.
from tests.servers.ftp import ftp_server, ftps_server  # noqa: E402, F401
from tests.servers.s3 import s3_bucket, s3_server  # noqa: E402, F401
from tests.servers.sftp import sftp_server  # noqa: E402, F401
from tests.servers.smtp import smtp_server  # noqa: E402, F401
from tests.servers.youtube import youtube_server  # noqa: E402, F401
