"""Signed webhooks: real local receivers, retries on a (shortened) schedule, a delivery log."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import dramatiq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from dramatiq.brokers.redis import RedisBroker
from standardwebhooks.webhooks import Webhook

from phantomflow.adapters.addresses import AddressRefused, check_url, is_public
from phantomflow.adapters.settings import Settings
from phantomflow.adapters.webhooks import sign
from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import Runtime, build_runtime
from phantomflow.api.services import Services
from phantomflow.domain.jobs import AUTOMATIC, RenderJob
from phantomflow.domain.script import MovieScript
from phantomflow.projections.runner import FollowerRunner, FollowerThreads
from phantomflow.workers.actors import in_process_broker
from phantomflow.workers.scheduling import delayed_sender
from phantomflow.workers.webhooks import (
    WebhookScheduler,
    WebhookService,
    declare_webhook_actor,
)
from tests.conftest import TINY_SCRIPT, assert_credits_reconcile, service_missing

PUBLIC_URL = "https://cdn.phantomflow.test"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


def docs_verify() -> Callable[[str, dict[str, str], bytes], bool]:
    """The receiver's `verify` exactly as docs/webhooks.md shows it."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(next(b for b in blocks if "def verify" in b), namespace)
    return namespace["verify"]


verify = docs_verify()


@dataclass
class Receiver:
    """A real HTTP endpoint that answers with `answers` in turn (the last one repeats)."""

    answers: list[int | str]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, body))
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if answer == "slow":
            await asyncio.sleep(2)
            answer = 200
        assert isinstance(answer, int)
        return web.Response(status=answer, text=f"answer {len(self.requests)}")


@pytest.fixture
async def receive() -> AsyncIterator[Callable[..., Any]]:
    servers: list[TestServer] = []

    async def start(*answers: int | str, host: str = "127.0.0.1") -> Receiver:
        receiver = Receiver(list(answers))
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        receiver.url = f"http://{host}:{server.port}/hook"
        return receiver

    yield start
    for server in servers:
        await server.close()


@dataclass
class Deliveries:
    """The embedded delivery pipeline: scheduler follower, in-process broker, worker."""

    runtime: Runtime
    service: WebhookService
    broker: dramatiq.Broker
    threads: FollowerThreads
    worker: dramatiq.Worker

    def stop(self) -> None:
        self.threads.stop()
        self.worker.stop()
        self.broker.close()


def start_deliveries(
    runtime: Runtime,
    broker: dramatiq.Broker | None = None,
    retry_delays: tuple[float, ...] = (0.2, 0.2, 0.2),
    allow_private: bool = True,
) -> Deliveries:
    broker = broker or in_process_broker()
    service = WebhookService(
        app=runtime.app,
        public_url=PUBLIC_URL,
        allow_private=allow_private,
        retry_delays=retry_delays,
    )
    actor = declare_webhook_actor(broker, lambda: service)
    scheduler = WebhookScheduler(runtime.app, send=delayed_sender(actor))
    threads = FollowerThreads(
        [FollowerRunner(runtime.app, runtime.views, scheduler, poll_interval=0.02)]
    )
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    threads.start()
    return Deliveries(runtime, service, broker, threads, worker)


@pytest.fixture
def deliveries(runtime) -> Iterator[Callable[..., Deliveries]]:
    started: list[Deliveries] = []

    def start(**options: Any) -> Deliveries:
        started.append(start_deliveries(runtime, **options))
        return started[-1]

    yield start
    for pipeline in started:
        pipeline.stop()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Receivers listen on 127.0.0.1: these tests allow private URLs (unless they say not)."""
    built = build_runtime(replace(settings, allow_private_urls=True))
    yield built
    try:
        assert_credits_reconcile(built)
    finally:
        built.close()


@pytest.fixture
async def api(runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(runtime)))) as client:
        yield client


def ended_job(
    runtime: Runtime,
    account_id: UUID,
    webhook_uri: str | None,
    end: str = "complete",
    metadata: dict[str, Any] | None = None,
):
    app = runtime.app
    job_id = app.submit_render(
        account_id, MovieScript.from_dict(TINY_SCRIPT), webhook_uri, {}, metadata=metadata
    ).job_id
    app.start_job(app.get_job(job_id), "worker", lease_seconds=60)
    if end == "fail":
        app.fail_job(job_id, "RENDER_FAILED", "the font is missing")
    elif end == "cancel":
        app.cancel_job(job_id, "the font is missing")
    else:
        app.complete_job(job_id, f"{job_id}.mp4", 1.0, 2048)
    return job_id


def private_host_name() -> str:
    """A host name (not a literal, not a well-known local name, so only the resolver can
    catch it) that resolves to a non-public address on this machine: its own name, or
    another from /etc/hosts. Without one, the test cannot check the resolver: a skip
    outside CI, a failure in CI."""
    candidates = [socket.gethostname(), socket.getfqdn(), *hosts_file_names()]
    for name in dict.fromkeys(candidates):
        if name.lower().rstrip(".") in ("localhost", "localhost.localdomain") or not name:
            continue
        try:
            check_url(f"http://{name}/")
            address = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)[0][4][0]
        except (OSError, AddressRefused):
            continue
        if not is_public(str(address)):
            return name
    service_missing("a host name that resolves to a non-public address")
    raise AssertionError("unreachable")


def hosts_file_names() -> list[str]:
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return []
    return [name for line in lines for name in line.split("#", 1)[0].split()[1:]]


async def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_failing_receiver_is_retried_until_it_accepts_and_the_log_shows_every_attempt(
    runtime, receive, deliveries, api
):
    receiver = await receive(503, 500, 200)
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    response = await api.post(
        "/api/render", json={**TINY_SCRIPT, "webhook_uri": receiver.url}, headers=headers
    )
    assert response.status == 202
    job_id = UUID((await response.json())["job_id"])
    app = runtime.app
    app.start_job(app.get_job(job_id), "worker", lease_seconds=60)
    app.complete_job(job_id, f"{job_id}.mp4", 1.0, 2048)
    deliveries()
    await wait_for(lambda: len(receiver.requests) == 3)

    secret = (await (await api.get("/api/webhooks/secret", headers=headers)).json())["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    bodies = {body for _, body in receiver.requests}
    ids = {request_headers["webhook-id"] for request_headers, _ in receiver.requests}
    assert len(bodies) == 1 and ids == {f"msg_{job_id.hex}"}  # one message, sent 3 times
    for request_headers, body in receiver.requests:
        assert verify(secret, request_headers, body)
        Webhook(secret).verify(body, request_headers)  # the reference implementation agrees
        assert not verify(secret, request_headers, body.replace(b"completed", b"failed"))
    job = app.get_job(job_id)
    completed = next(e for e in app.events.get(job_id) if isinstance(e, RenderJob.Completed))
    assert json.loads(bodies.pop()) == {
        "job_id": str(job_id),
        "status": "completed",
        "output_uri": f"{PUBLIC_URL}/outputs/{job_id}.mp4",
        "credits_used": job.credits_used,
        "duration_seconds": 1.0,
        "error": None,
        "metadata": {},
        "exports": [],
        "timestamp": completed.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }

    await wait_for(lambda: runtime.app.get_job(job_id).webhook_delivered)
    log = await (await api.get(f"/api/jobs/{job_id}/webhooks", headers=headers)).json()
    assert (log["status"], log["webhook_uri"], log["webhook_id"]) == (
        "delivered",
        receiver.url,
        f"msg_{job_id.hex}",
    )
    attempts = log["attempts"]
    assert [(a["attempt"], a["trigger"], a["status_code"], a["delivered"]) for a in attempts] == [
        (1, "automatic", 503, False),
        (2, "automatic", 500, False),
        (3, "automatic", 200, True),
    ]
    assert attempts[0]["error"] == "HTTP 503 Service Unavailable"
    assert attempts[2]["error"] is None and attempts[2]["response_excerpt"] == "answer 3"
    assert [a["next_attempt_at"] is not None for a in attempts] == [True, True, False]
    assert all(a["duration_ms"] >= 0 and a["attempted_at"].endswith("Z") for a in attempts)
    # The log is the job's own history: an audit replay shows the same attempts.
    replayed = [e for e in app.events.get(job_id) if isinstance(e, RenderJob.WebhookAttempted)]
    assert [e.status_code for e in replayed] == [503, 500, 200]


@pytest.mark.parametrize(
    ("end", "status", "code"),
    [("fail", "failed", "RENDER_FAILED"), ("cancel", "cancelled", "CANCELLED")],
)
async def test_a_job_that_fails_or_is_cancelled_is_reported_with_its_error(
    runtime, receive, deliveries, end, status, code
):
    receiver = await receive(204)
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = ended_job(runtime, account.account_id, receiver.url, end=end)
    deliveries()
    await wait_for(lambda: len(receiver.requests) == 1)
    body = json.loads(receiver.requests[0][1])
    assert (body["job_id"], body["status"], body["output_uri"]) == (str(job_id), status, None)
    assert body["credits_used"] == runtime.app.get_job(job_id).credits_used
    assert body["error"] == {"code": code, "message": "the font is missing"}


async def test_the_payload_carries_the_jobs_metadata(runtime, receive, deliveries):
    receiver = await receive(204)
    account = runtime.app.open_account(plan="pro", credits=10)
    metadata = {"order": "A-1042", "lines": [{"sku": "x", "qty": 2}]}
    ended_job(runtime, account.account_id, receiver.url, metadata=metadata)
    deliveries()
    await wait_for(lambda: len(receiver.requests) == 1)
    assert json.loads(receiver.requests[0][1])["metadata"] == metadata


async def test_retries_end_with_the_schedule_and_the_delivery_is_marked_failed(
    runtime, receive, deliveries, api
):
    receiver = await receive(500)
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = ended_job(runtime, account.account_id, receiver.url)
    deliveries(retry_delays=(0.1, 0.1))
    await wait_for(lambda: runtime.app.get_job(job_id).webhook_attempt_count == 3)
    await asyncio.sleep(0.5)  # nothing else comes
    assert len(receiver.requests) == 3
    log = await (
        await api.get(f"/api/jobs/{job_id}/webhooks", headers={"x-api-key": account.api_key})
    ).json()
    assert log["status"] == "failed"
    assert [a["next_attempt_at"] is None for a in log["attempts"]] == [False, False, True]


async def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(runtime, receive):
    receiver = await receive("slow")
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = ended_job(runtime, account.account_id, receiver.url)
    service = WebhookService(runtime.app, PUBLIC_URL, allow_private=True, timeout=0.3)
    outcome = await asyncio.to_thread(service.run, job_id, "automatic", 1)
    assert outcome == "failed: timed out after 0.3 s"
    (attempt,) = [
        e for e in runtime.app.events.get(job_id) if isinstance(e, RenderJob.WebhookAttempted)
    ]
    assert (attempt.status_code, attempt.delivered) == (None, False)
    assert 300 <= attempt.duration_ms < 2000 and attempt.next_attempt_at is not None
    # The same attempt again (a message the broker delivered twice) is neither sent nor logged.
    assert await asyncio.to_thread(service.run, job_id, "automatic", 1) == "already attempted"
    assert len(receiver.requests) == 1


async def test_manual_redelivery_resends_the_same_payload_with_the_same_id(
    runtime, receive, deliveries, api
):
    receiver = await receive(200)
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    job_id = ended_job(runtime, account.account_id, receiver.url)
    deliveries()
    await wait_for(lambda: len(receiver.requests) == 1)

    response = await api.post(f"/api/jobs/{job_id}/webhooks/redeliver", headers=headers)
    assert (response.status, (await response.json())["redelivery"]) == (202, 1)
    await wait_for(lambda: len(receiver.requests) == 2)
    (first_headers, first_body), (second_headers, second_body) = receiver.requests
    assert second_body == first_body
    assert second_headers["webhook-id"] == first_headers["webhook-id"]
    await wait_for(lambda: runtime.app.get_job(job_id).webhook_attempt_count == 2)
    log = await (await api.get(f"/api/jobs/{job_id}/webhooks", headers=headers)).json()
    assert [(a["trigger"], a["status_code"]) for a in log["attempts"]] == [
        ("automatic", 200),
        ("manual", 200),
    ]

    without = ended_job(runtime, account.account_id, None)
    refused = await api.post(f"/api/jobs/{without}/webhooks/redeliver", headers=headers)
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "NOTHING_TO_REDELIVER"
    assert "no webhook_uri" in (await refused.json())["error"]["message"]
    other = runtime.app.open_account(plan="pro", credits=1)
    hidden = await api.get(f"/api/jobs/{job_id}/webhooks", headers={"x-api-key": other.api_key})
    assert hidden.status == 404


async def test_after_a_rotation_both_secrets_sign_for_a_grace_period(
    runtime, receive, deliveries, api
):
    receiver = await receive(200)
    account = runtime.app.open_account(plan="pro", credits=10)
    headers = {"x-api-key": account.api_key}
    old = (await (await api.get("/api/webhooks/secret", headers=headers)).json())["secret"]
    rotated = await (await api.post("/api/webhooks/secret/rotate", headers=headers)).json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    assert (await (await api.get("/api/webhooks/secret", headers=headers)).json())["secret"] == new
    assert rotated["previous_secret_expires_at"].endswith("Z")

    ended_job(runtime, account.account_id, receiver.url)
    deliveries()
    await wait_for(lambda: len(receiver.requests) == 1)
    request_headers, body = receiver.requests[0]
    signatures = request_headers["webhook-signature"].split(" ")
    stamp = int(request_headers["webhook-timestamp"])
    assert signatures == [
        sign(new, request_headers["webhook-id"], stamp, body),
        sign(old, request_headers["webhook-id"], stamp, body),
    ]
    assert verify(new, request_headers, body) and verify(old, request_headers, body)
    assert not verify("whsec_" + base64.b64encode(b"x" * 32).decode(), request_headers, body)


@pytest.mark.parametrize(
    ("after_rotation", "old_still_signs"),
    [(timedelta(hours=24) - timedelta(seconds=1), True), (timedelta(hours=24, seconds=1), False)],
    ids=["just-before-24h", "just-after-24h"],
)
def test_the_previous_secret_signs_for_24_hours_after_a_rotation_and_not_after(
    runtime, after_rotation, old_still_signs
):
    account = runtime.app.open_account(plan="pro", credits=10)
    old = runtime.app.webhook_secret(account.account_id)
    before = datetime.now(UTC)
    new, expires = runtime.app.rotate_webhook_secret(account.account_id)
    rotated_at = datetime.now(UTC)
    assert before + timedelta(hours=24) <= expires <= rotated_at + timedelta(hours=24)
    # The latest instant the rotation can have happened: the old secret must still sign
    # up to a second before 24 hours from then, and no longer a second after.
    moment = (rotated_at if old_still_signs else before) + after_rotation
    expected = [new, old] if old_still_signs else [new]
    assert runtime.app.webhook_signing_secrets(account.account_id, moment) == expected


async def test_without_the_private_url_setting_loopback_webhooks_are_refused(
    runtime, settings, receive, deliveries
):
    receiver = await receive(200)
    account = runtime.app.open_account(plan="pro", credits=10)
    strict = build_runtime(settings)  # the same store, PHANTOMFLOW_ALLOW_PRIVATE_URLS unset
    assert not strict.settings.allow_private_urls
    async with TestClient(TestServer(create_app(Services(strict)))) as api:
        response = await api.post(
            "/api/render",
            json={**TINY_SCRIPT, "webhook_uri": receiver.url},
            headers={"x-api-key": account.api_key},
        )
        assert response.status == 400
        error = (await response.json())["error"]
        assert (await api.post(
            "/api/render",
            json={**TINY_SCRIPT, "webhook_uri": "http://localhost:9/hook"},
            headers={"x-api-key": account.api_key},
        )).status == 400  # fmt: skip
    strict.close()
    assert (error["code"], error["path"]) == ("SCHEMA_VALIDATION_ERROR", "webhook_uri")

    # Jobs whose URL passed when submitted (here: written straight to the store) are
    # checked again at delivery: the literal by the URL check, and a host name by the
    # resolver, which sees what the name points to now.
    host = private_host_name()
    named = await receive(200, host=host)
    literal_job = ended_job(runtime, account.account_id, receiver.url)
    named_job = ended_job(runtime, account.account_id, named.url)
    deliveries(allow_private=False, retry_delays=())
    errors = {}
    for job_id in (literal_job, named_job):
        await wait_for(lambda job_id=job_id: runtime.app.get_job(job_id).webhook_attempt_count)
        (attempt,) = [
            e for e in runtime.app.events.get(job_id) if isinstance(e, RenderJob.WebhookAttempted)
        ]
        errors[job_id] = attempt.error
    assert errors[literal_job] == "refused: 127.0.0.1 is not a public address"
    assert errors[named_job].startswith("refused: ") and "non-public address" in errors[named_job]
    assert receiver.requests == [] and named.requests == []


async def test_a_job_that_ends_while_redis_is_down_is_delivered_and_retried_once_it_is_back(
    runtime,
    receive,
    private_redis,
):
    receiver = await receive(502, 200)
    account = runtime.app.open_account(plan="pro", credits=10)
    job_id = ended_job(runtime, account.account_id, receiver.url)
    broker = RedisBroker(url=private_redis.url)
    service = WebhookService(runtime.app, PUBLIC_URL, allow_private=True, retry_delays=(0.3,))
    actor = declare_webhook_actor(broker, lambda: service)
    runner = FollowerRunner(
        runtime.app, runtime.views, WebhookScheduler(runtime.app, delayed_sender(actor))
    )

    assert runner.run_once() == 0  # Redis is down: nothing is sent, the position stays
    assert runner.position() < runtime.app.recorder.max_notification_id()

    private_redis.start()
    threads = FollowerThreads([runner])
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    threads.start()
    try:
        await wait_for(lambda: runtime.app.get_job(job_id).webhook_delivered, timeout=20)
    finally:
        threads.stop()
        worker.stop()
        broker.close()
    attempts = [
        e for e in runtime.app.events.get(job_id) if isinstance(e, RenderJob.WebhookAttempted)
    ]
    assert [e.status_code for e in attempts] == [502, 200]
    assert len(receiver.requests) == 2


async def test_a_scheduler_started_on_an_old_store_sends_no_webhooks_for_long_ended_jobs(
    runtime, receive
):
    receiver = await receive(200)
    account = runtime.app.open_account(plan="pro", credits=10)
    ended_job(runtime, account.account_id, receiver.url)
    sent: list[tuple[str, str, int, float]] = []

    def send(*message: Any) -> None:
        sent.append(message)

    a_day_later = datetime.now(UTC) + timedelta(hours=24, minutes=1)
    late = FollowerRunner(
        runtime.app, runtime.views, WebhookScheduler(runtime.app, send, clock=lambda: a_day_later)
    )
    assert late.catch_up() > 0 and sent == []

    # The same history read again from zero, within the window: the webhook is sent.
    on_time = FollowerRunner(runtime.app, runtime.views, WebhookScheduler(runtime.app, send))
    on_time.rebuild()
    assert [message[1:3] for message in sent] == [(AUTOMATIC, 1)]
