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
from tests.conftest import TINY_SCRIPT
from tests.media import ffprobe
from tests.processes import RunningSystem, base_env, request, start_embedded, start_production


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


@pytest.fixture(params=["embedded", "production"])
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

    # The list is the read model, which follows the event store a moment behind.
    deadline = time.monotonic() + 10
    listed = request("GET", f"{system.base_url}/api/jobs?status=completed", key)
    while not listed["jobs"] and time.monotonic() < deadline:
        time.sleep(0.1)
        listed = request("GET", f"{system.base_url}/api/jobs?status=completed", key)
    assert [j["job_id"] for j in listed["jobs"]] == [submitted["job_id"]]
