"""Plans and their limits: requests per minute shared by every API process, and
concurrent jobs enforced atomically."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.adapters.ratelimit import WINDOW_SECONDS
from phantomflow.adapters.settings import Settings
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import build_runtime
from phantomflow.api.cli import main
from phantomflow.api.services import Services
from phantomflow.domain.errors import ConcurrencyLimitExceeded, DomainError, InsufficientCredits
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT


async def serve(runtime) -> TestClient:
    client = TestClient(TestServer(create_app(Services(runtime))))
    await client.start_server()
    return client


@pytest.fixture
def one_window() -> None:
    """Counts are per fixed minute: a test that counts requests starts early in a window,
    so the window cannot roll over (and reset the count) halfway through it."""
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < 15:
        time.sleep(left + 0.1)


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    test_client = await serve(runtime)
    yield test_client
    await test_client.close()


async def test_every_authenticated_response_carries_the_rate_limit_headers(
    one_window, client, runtime
):
    account = runtime.app.open_account(plan="starter", credits=10)
    headers = {"x-api-key": account.api_key}
    first = await client.get("/api/jobs", headers=headers)
    second = await client.get("/api/jobs/not-a-job", headers=headers)  # an error too
    assert second.status == 404
    assert first.headers["X-RateLimit-Limit"] == second.headers["X-RateLimit-Limit"] == "60"
    assert int(first.headers["X-RateLimit-Remaining"]) - 1 == int(
        second.headers["X-RateLimit-Remaining"]
    )
    reset = int(first.headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 60


async def test_over_the_plans_rate_the_answer_is_429_with_retry_after(one_window, client, runtime):
    account = runtime.app.open_account(plan="free", credits=10)
    headers = {"x-api-key": account.api_key}
    statuses = [(await client.get("/api/jobs", headers=headers)).status for _ in range(10)]
    assert statuses == [200] * 10
    refused = await client.get("/api/jobs", headers=headers)
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    other = runtime.app.open_account(plan="free", credits=10)
    assert (await client.get("/api/jobs", headers={"x-api-key": other.api_key})).status == 200


async def test_api_processes_share_one_count_through_redis(
    one_window, settings, redis_url, redis_namespace
):
    shared = dataclasses.replace(settings, redis_url=redis_url, redis_namespace=redis_namespace)
    first_process, second_process = build_runtime(shared), build_runtime(shared)
    first, second = await serve(first_process), await serve(second_process)
    try:
        account = first_process.app.open_account(plan="free", credits=10)
        headers = {"x-api-key": account.api_key}
        for index in range(10):
            response = await (first if index % 2 else second).get("/api/jobs", headers=headers)
            assert response.status == 200
        assert (await first.get("/api/jobs", headers=headers)).status == 429
        assert (await second.get("/api/jobs", headers=headers)).status == 429
    finally:
        await first.close()
        await second.close()
        first_process.close()
        second_process.close()


async def test_a_submission_over_the_concurrent_job_limit_is_refused_until_one_ends(
    client, runtime
):
    account = runtime.app.open_account(plan="free", credits=100)  # 2 jobs at once
    headers = {"x-api-key": account.api_key}
    accepted = []
    for _ in range(2):
        response = await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
        accepted.append((await response.json())["job_id"])
    refused = await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    assert refused.status == 429
    error = (await refused.json())["error"]
    assert (error["code"], error["limit"]) == ("CONCURRENCY_LIMIT_EXCEEDED", 2)
    runtime.app.fail_job(uuid.UUID(accepted[0]), "RENDER_FAILED", "x")
    again = await client.post("/api/render", json=TINY_SCRIPT, headers=headers)
    assert again.status == 202


def test_a_burst_of_parallel_submits_never_gets_more_than_the_limit_through(settings):
    runtimes = [build_runtime(settings) for _ in range(3)]
    try:
        account = runtimes[0].app.open_account(plan="free", credits=1000)
        start = threading.Barrier(12)

        def submit(index: int) -> str:
            start.wait()
            try:
                runtimes[index % 3].app.submit_render(
                    account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
                )
                return "accepted"
            except ConcurrencyLimitExceeded:
                return "429"
            except InsufficientCredits:
                return "402"

        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(submit, range(12)))
        assert outcomes.count("accepted") == 2
        assert len(runtimes[0].app.get_account(account.account_id).active_jobs) == 2
    finally:
        for runtime in runtimes:
            runtime.close()


def test_plan_changes_are_events_and_enterprise_limits_are_custom(runtime):
    account = runtime.app.open_account(plan="free", credits=0)
    runtime.app.change_plan(account.account_id, "enterprise", 1000, 3)
    limits = runtime.app.get_account(account.account_id).limits
    assert (limits.requests_per_minute, limits.concurrent_jobs) == (1000, 3)
    runtime.app.change_plan(account.account_id, "pro")
    limits = runtime.app.get_account(account.account_id).limits
    assert (limits.requests_per_minute, limits.concurrent_jobs) == (120, 10)
    with pytest.raises(DomainError):
        runtime.app.change_plan(account.account_id, "starter", 5000, None)
    history = [type(e).__name__ for e in runtime.app.events.get(account.account_id)]
    assert history.count("PlanChanged") == 2


def test_plan_command_prints_the_new_limits(sqlite_settings, monkeypatch, capsys):
    monkeypatch.setenv("PHANTOMFLOW_DATA_DIR", str(sqlite_settings.data_dir))
    runtime = build_runtime(sqlite_settings)
    account = runtime.app.open_account(plan="free", credits=0)
    runtime.close()
    capsys.readouterr()
    assert main(["accounts", "plan", str(account.account_id), "starter"]) == 0
    assert '"concurrent_jobs": 5' in capsys.readouterr().out


async def test_a_burst_beyond_the_redis_pool_waits_instead_of_failing(redis_url):
    from phantomflow.adapters.ratelimit import RedisRateLimiter

    limiter = RedisRateLimiter(redis_url, f"{uuid.uuid4()}:rate", max_connections=5)
    try:
        decisions = await asyncio.gather(*(limiter.hit("burst", 1000) for _ in range(200)))
    finally:
        await limiter.close()
    assert sorted(d.remaining for d in decisions) == list(range(800, 1000))


async def test_a_redis_window_count_expires_soon_after_its_window(redis_url):
    from phantomflow.adapters.ratelimit import WINDOW_SECONDS, RedisRateLimiter

    limiter = RedisRateLimiter(redis_url, f"{uuid.uuid4()}:rate")
    account = "ttl"
    try:
        first = await limiter.hit(account, 5)
        second = await limiter.hit(account, 5)
        [name] = await limiter.redis.keys(f"{limiter.key_prefix}:{account}:*")
        ttl = await limiter.redis.ttl(name)
        await limiter.redis.delete(name)
    finally:
        await limiter.close()
    assert (first.remaining, second.remaining) == (4, 3)
    assert WINDOW_SECONDS < ttl <= WINDOW_SECONDS + 5


async def test_when_redis_is_unreachable_requests_are_let_through():
    from phantomflow.adapters.ratelimit import RedisRateLimiter
    from tests.conftest import free_port

    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0")
    try:
        decision = await limiter.hit("anyone", 10)
    finally:
        await limiter.close()
    assert decision.allowed


async def test_deployments_sharing_a_redis_under_their_own_namespaces_count_apart(
    one_window, redis_url
):
    from phantomflow.adapters.ratelimit import RedisRateLimiter

    own = [
        Settings.from_env({"PHANTOMFLOW_REDIS_NAMESPACE": f"deploy-{uuid.uuid4().hex[:8]}"})
        for _ in range(2)
    ]
    assert own[0].queue_namespace != own[1].queue_namespace
    assert Settings.from_env({}).queue_namespace == "dramatiq"  # Dramatiq's own default
    limiters = [RedisRateLimiter(redis_url, settings.rate_key_prefix) for settings in own]
    try:
        first = [await limiters[0].hit("same-account", 5) for _ in range(3)]
        second = await limiters[1].hit("same-account", 5)
    finally:
        for limiter in limiters:
            await limiter.close()
    assert [d.remaining for d in first] == [4, 3, 2]
    assert second.remaining == 4
