"""The whole system as a user runs it: processes started by the CLI, a script over HTTP,
a real MP4 out, and a ledger that adds up. Once on the embedded default (`phantomflow
serve`), once as production processes (`api`, `worker`, `projections`) on PostgreSQL
and Redis."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from phantomflow.adapters.settings import Settings
from phantomflow.api.bootstrap import build_runtime
from tests.conftest import POSTGRES_URL, TINY_SCRIPT, free_port
from tests.media import ffprobe
from tests.processes import RunningSystem, base_env, request, start_embedded, start_production
from tests.servers.s3 import S3Bucket


def start_on_separate_hosts(
    tmp_path: Path,
    env: dict[str, str],
    postgres_schema: str,
    redis_url: str,
    redis_namespace: str,
    s3_bucket: S3Bucket,
) -> RunningSystem:
    """`api`, `projections` and `worker` as if each ran on a host of its own: each with
    its own empty data and scratch directories, sharing nothing but PostgreSQL, Redis
    and an S3 bucket. The API streams outputs from S3 itself (proxy), so the download
    goes through it."""
    port = free_port()
    env = {
        **env,
        **s3_bucket.endpoint.env(),
        "DATABASE_URL": POSTGRES_URL,
        "PHANTOMFLOW_DB_SCHEMA": postgres_schema,
        "REDIS_URL": redis_url,
        "PHANTOMFLOW_REDIS_NAMESPACE": redis_namespace,
        "PHANTOMFLOW_STORAGE_URL": f"s3://{s3_bucket.name}/renders",
        "PHANTOMFLOW_S3_SERVE": "proxy",
        "PHANTOMFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    system = RunningSystem(env=env, base_url=f"http://127.0.0.1:{port}")
    for host in ("api", "projections", "worker"):
        (tmp_path / host / "scratch").mkdir(parents=True)

    def own(host: str) -> dict[str, str]:
        return {"PHANTOMFLOW_DATA_DIR": str(tmp_path / host / "data"),
                "TMPDIR": str(tmp_path / host / "scratch")}  # fmt: skip

    system.start("api", "--host", "127.0.0.1", "--port", str(port), log=tmp_path / "api.log",
                 **own("api"))  # fmt: skip
    system.start("projections", log=tmp_path / "projections.log", **own("projections"))
    system.start("worker", "--processes", "1", "--threads", "1", log=tmp_path / "worker.log",
                 **own("worker"))  # fmt: skip
    return system


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[RunningSystem]:
    system = start_embedded(tmp_path, base_env(tmp_path))
    yield system
    system.stop()


@pytest.fixture
def production(
    tmp_path: Path, postgres_schema: str, redis_url: str, redis_namespace: str
) -> Iterator[RunningSystem]:
    system = start_production(
        tmp_path, base_env(tmp_path), postgres_schema, redis_url, redis_namespace
    )
    yield system
    system.stop()


@pytest.fixture
def embedded_on_s3(tmp_path: Path, s3_bucket: S3Bucket) -> Iterator[RunningSystem]:
    """`phantomflow serve` with its outputs in S3 (served by redirecting to S3)."""
    env = {
        **base_env(tmp_path),
        **s3_bucket.endpoint.env(),
        "PHANTOMFLOW_STORAGE_URL": f"s3://{s3_bucket.name}",
    }
    system = start_embedded(tmp_path, env)
    yield system
    system.stop()


@pytest.fixture
def separate_hosts(
    tmp_path: Path, postgres_schema: str, redis_url: str, redis_namespace: str, s3_bucket
) -> Iterator[RunningSystem]:
    system = start_on_separate_hosts(
        tmp_path, base_env(tmp_path), postgres_schema, redis_url, redis_namespace, s3_bucket
    )
    yield system
    system.stop()


@pytest.fixture(params=["embedded", "production", "embedded_on_s3", "separate_hosts"])
def system(request: pytest.FixtureRequest) -> RunningSystem:
    return request.getfixturevalue(request.param)


def test_a_script_posted_over_http_becomes_an_mp4_and_the_ledger_adds_up(
    system: RunningSystem, tmp_path: Path
):
    system.wait_until_up()
    account = system.cli("accounts", "create", "--plan", "pro", "--credits", "50")
    assert account["api_key"].startswith("ve_live_")
    assert account["test_api_key"].startswith("ve_test_")
    key = account["api_key"]

    script = {**TINY_SCRIPT, "scenes": [*TINY_SCRIPT["scenes"], {"duration": 1}]}
    submitted = request("POST", f"{system.base_url}/api/render", key, script)
    assert (submitted["status"], submitted["credits_remaining"]) == (
        "queued",
        50 - submitted["estimated_credits"],
    )

    deadline = time.monotonic() + 90
    job: dict = {}
    while time.monotonic() < deadline:
        job = request("GET", f"{system.base_url}/api/jobs/{submitted['job_id']}", key)
        if job["status"] in ("completed", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] == "completed", f"{job}\n{system.output()}"
    assert (job["progress"], job["stage"]) == (1, "complete")
    assert job["completed_at"] is not None

    output = tmp_path / "out.mp4"
    assert job["output_uri"].startswith(system.base_url + "/")
    with urllib.request.urlopen(job["output_uri"], timeout=30) as response:
        output.write_bytes(response.read())
    probe = ffprobe(output)
    video = [s for s in probe["streams"] if s["codec_type"] == "video"]
    assert len(video) == 1
    assert (video[0]["codec_name"], video[0]["width"], video[0]["height"]) == ("h264", 320, 240)
    assert abs(float(probe["format"]["duration"]) - 2.0) < 0.15
    assert abs(job["duration_seconds"] - 2.0) < 0.15

    settings = Settings.from_env(system.env)
    runtime = build_runtime(settings)
    try:
        balance = runtime.app.get_account(uuid.UUID(account["account_id"])).balance
    finally:
        runtime.close()
    assert balance == 50 - job["credits_used"]

    if "PHANTOMFLOW_STORAGE_URL" in system.env:
        # Outputs live in the bucket alone: no process kept a file of them.
        kept = [p for p in tmp_path.rglob("*") if p.suffix in (".mp4", ".jpg") and p != output]
        assert kept == [], kept

    # The list is the read model, which follows the event store a moment behind.
    deadline = time.monotonic() + 10
    listed = request("GET", f"{system.base_url}/api/jobs?status=completed", key)
    while not listed["jobs"] and time.monotonic() < deadline:
        time.sleep(0.1)
        listed = request("GET", f"{system.base_url}/api/jobs?status=completed", key)
    assert [j["job_id"] for j in listed["jobs"]] == [submitted["job_id"]]
