"""The Python SDK (clients/python) against the live embedded server: renders, SSE with
resume, retries that never charge twice, paging, templates, keys, credits, webhooks."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from standardwebhooks.webhooks import Webhook

from phantomflow_client import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    CompleteEvent,
    ConflictError,
    ErrorEvent,
    InsufficientCreditsError,
    JobFailedError,
    NotFoundError,
    ProgressEvent,
    RateLimitError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    WaitTimeoutError,
)
from phantomflow_client.webhooks import WebhookVerificationError, sign, verify
from tests.conftest import TINY_SCRIPT, free_port
from tests.live_server import Fault, FaultProxy, LiveServer
from tests.media import ffprobe

# Sandbox jobs take 0.05 s a scene: enough scenes for a stream to be cut while it runs.
MANY_SCENES = {
    **TINY_SCRIPT,
    "scenes": [{"duration": 0.5, "background": "#202020", "elements": []}] * 30,
}
# Long enough to be still running when it is cancelled (and cancelled at once, so cheap).
LONG_SCRIPT = {**TINY_SCRIPT, "scenes": [{"duration": 300, "background": "#000000"}]}
FAST_RETRIES = RetryPolicy(max_retries=3, backoff=0.05, max_backoff=0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # A 2-second rate window, so that a test can wait out a 429 in the time of a test.
    live = LiveServer(tmp_path_factory.mktemp("sdk-server"), rate_window_seconds=2).start()
    yield live
    live.stop()


@pytest.fixture
def account(server: LiveServer):
    return server.open_account(plan="pro", credits=1000)


@pytest.fixture
def client(server: LiveServer, account) -> Iterator[Client]:
    with Client(account.api_key, base_url=server.url, retry=FAST_RETRIES) as live:
        yield live


@pytest.fixture
def sandbox(server: LiveServer, account) -> Iterator[Client]:
    with Client(account.test_api_key, base_url=server.url, retry=FAST_RETRIES) as test:
        yield test


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[FaultProxy]:
    running = FaultProxy(server.port).start()
    yield running
    running.stop()


def is_request(method: str, path: str):
    return lambda seen: seen.method == method and seen.path == path


# --- rendering ------------------------------------------------------------------------


def test_render_waits_for_the_finished_job_and_its_video_downloads(client: Client, tmp_path):
    events = []
    job = client.render(TINY_SCRIPT, on_event=events.append, timeout=120)

    assert job.status == "completed"
    assert job.credits_used == 1 and job.duration_seconds == pytest.approx(1, abs=0.1)
    assert isinstance(events[-1], CompleteEvent) and events[-1].output_uri == job.output_uri
    assert all(isinstance(event, ProgressEvent) for event in events[:-1])
    assert [event.id for event in events] == sorted({event.id for event in events})
    saved = client.jobs.download(job, tmp_path / "out.mp4")
    video = next(s for s in ffprobe(saved)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)
    assert client.credits.balance().credits == 999


def test_a_render_that_fails_raises_with_the_failed_job(client: Client, server: LiveServer):
    script = {
        **TINY_SCRIPT,
        "scenes": [
            {"duration": 1, "background": {"type": "image", "src": f"{server.url}/nope.png"}}
        ],
    }
    with pytest.raises(JobFailedError) as failed:
        client.render(script, timeout=120)

    assert failed.value.job.status == "failed"
    assert failed.value.job.error.code == "RENDER_FAILED"
    assert client.credits.balance().credits == 1000  # refunded in full


def test_render_without_wait_answers_the_submission(sandbox: Client):
    submission = sandbox.render(TINY_SCRIPT, wait=False)

    assert submission.status == "queued" and submission.estimated_credits == 1
    assert not submission.replayed
    assert sandbox.jobs.wait(submission.job_id, timeout=30).status == "completed"


def test_errors_carry_the_contracts_code_path_and_details(client: Client, server: LiveServer):
    with pytest.raises(BadRequestError) as bad:
        client.renders.create({**TINY_SCRIPT, "width": "320"})
    assert bad.value.code == "SCHEMA_VALIDATION_ERROR" and bad.value.path == "width"

    with pytest.raises(NotFoundError):
        client.jobs.get("00000000-0000-0000-0000-000000000000")

    poor = server.open_account(plan="pro", credits=0)
    with (
        Client(poor.api_key, base_url=server.url) as broke,
        pytest.raises(InsufficientCreditsError) as refused,
    ):
        broke.renders.create(TINY_SCRIPT)
    assert (refused.value.required, refused.value.balance) == (1, 0)

    with (
        Client("ve_live_" + "x" * 43, base_url=server.url) as stranger,
        pytest.raises(AuthenticationError),
    ):
        stranger.jobs.list()


def test_a_dry_run_prices_a_script_and_records_nothing(client: Client):
    quote = client.renders.quote(TINY_SCRIPT)
    template = client.templates.create("Dry", TINY_SCRIPT)
    template_quote = client.templates.quote(template.id, version=1)

    assert (quote.valid, quote.estimated_credits, quote.credits_remaining) == (True, 1, 999)
    assert quote.duration_seconds == 1 and template_quote.estimated_credits == 1
    assert client.credits.balance().credits == 1000
    assert client.credits.ledger().total == 1  # the opening grant alone
    with pytest.raises(BadRequestError) as refused:
        client.renders.quote({**TINY_SCRIPT, "fps": 0})
    assert refused.value.path == "fps"


def test_the_account_says_whose_key_it_is(sandbox: Client, account):
    found = sandbox.account.get()

    assert found.account_id == str(account.account_id)
    assert (found.plan, found.credits, found.active_jobs) == ("pro", 1000, 0)
    assert found.limits.requests_per_minute == 120 and found.key.mode == "test"


# --- following over SSE -----------------------------------------------------------------


def test_follow_yields_each_progress_event_then_the_outcome(sandbox: Client):
    submission = sandbox.renders.create(MANY_SCENES)
    events = list(sandbox.jobs.follow(submission.job_id, timeout=30))

    assert [event.stage for event in events[:2]] == ["queued", "starting"]
    assert isinstance(events[-1], CompleteEvent)
    assert [event.id for event in events] == sorted(set(event.id for event in events))
    # A finished job's stream is its outcome alone, at once.
    assert list(sandbox.jobs.follow(submission.job_id)) == [events[-1]]


def test_follow_resumes_after_a_cut_connection_without_losing_or_repeating(
    account, proxy: FaultProxy, sandbox: Client
):
    submission = sandbox.renders.create(MANY_SCENES)
    path = f"/api/jobs/{submission.job_id}/progress"
    proxy.add(Fault(is_request("GET", path), cut_after_events=3))
    proxy.add(Fault(is_request("GET", path), cut_after_events=5))

    with Client(account.test_api_key, base_url=proxy.url, retry=FAST_RETRIES) as through_proxy:
        followed = list(through_proxy.jobs.follow(submission.job_id, timeout=30))
    everything = list(sandbox.jobs.follow(submission.job_id, last_event_id=0))

    def story(events):  # the output's address differs: it is the origin the client called
        return [(e.id, e.name, getattr(e, "stage", None), e.raw.get("progress")) for e in events]

    assert story(followed) == story(everything) and isinstance(followed[-1], CompleteEvent)
    reconnects = [seen.headers.get("last-event-id") for seen in proxy.requests_to("GET", path)]
    assert reconnects == [None, str(followed[2].id), str(followed[7].id)]


def test_follow_of_a_cancelled_job_ends_with_its_cancellation(client: Client):
    submission = client.renders.create(LONG_SCRIPT)
    cancelled = client.jobs.cancel(submission.job_id)
    events = list(client.jobs.follow(submission.job_id, timeout=30))

    assert cancelled.status == "cancelled"
    assert isinstance(events[-1], ErrorEvent) and events[-1].code == "CANCELLED"
    assert client.jobs.wait(submission.job_id, timeout=10).status == "cancelled"
    with pytest.raises(ConflictError) as again:
        client.jobs.cancel(submission.job_id)
    assert again.value.code == "JOB_ALREADY_FINISHED"


def test_wait_gives_up_after_its_timeout(client: Client):
    submission = client.renders.create(LONG_SCRIPT)
    try:
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError):
            client.jobs.wait(submission.job_id, timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        client.jobs.cancel(submission.job_id)


def test_the_account_stream_carries_every_jobs_events(sandbox: Client):
    first = sandbox.renders.create(TINY_SCRIPT)
    sandbox.jobs.wait(first.job_id, timeout=30)
    start = sandbox.jobs.history(first.job_id)  # any id before the next job will do
    assert start.events
    second = sandbox.renders.create(TINY_SCRIPT)
    after = list(sandbox.jobs.follow(first.job_id, last_event_id=0))[-1].id

    seen = []
    for event in sandbox.events.follow(last_event_id=after):
        seen.append(event)
        if isinstance(event, CompleteEvent) and event.job_id == second.job_id:
            break
    assert {event.job_id for event in seen} == {second.job_id}


# --- retries ------------------------------------------------------------------------------


def test_a_submission_whose_answer_is_lost_is_retried_and_charged_once(
    account, proxy: FaultProxy, client: Client
):
    proxy.add(Fault(is_request("POST", "/api/render"), lose_answer=True))
    retries: list[RetryEvent] = []
    policy = RetryPolicy(max_retries=3, backoff=0.05, on_retry=retries.append)

    with Client(account.api_key, base_url=proxy.url, retry=policy) as through_proxy:
        submission = through_proxy.renders.create(TINY_SCRIPT)

    posts = proxy.requests_to("POST", "/api/render")
    assert len(posts) == 2 and len(retries) == 1
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert submission.replayed
    assert client.credits.balance().credits == 999
    assert client.credits.ledger(type="charge").total == 1
    client.jobs.wait(submission.job_id, timeout=120)


def test_two_calls_are_two_submissions(sandbox: Client):
    first = sandbox.renders.create(TINY_SCRIPT)
    second = sandbox.renders.create(TINY_SCRIPT)
    assert first.job_id != second.job_id


def test_server_errors_on_reads_are_retried_with_backoff(account, proxy: FaultProxy):
    proxy.add(Fault(is_request("GET", "/api/credits"), status=503))
    proxy.add(Fault(is_request("GET", "/api/credits"), status=502))
    retries: list[RetryEvent] = []
    policy = RetryPolicy(max_retries=3, backoff=0.05, on_retry=retries.append)

    with Client(account.api_key, base_url=proxy.url, retry=policy) as through_proxy:
        assert through_proxy.credits.balance().credits == 1000

    assert [(r.attempt, r.status) for r in retries] == [(1, 503), (2, 502)]
    assert retries[0].delay <= retries[1].delay * 2 + 0.05


def test_a_server_error_on_a_creation_without_idempotency_key_is_not_retried(
    account, proxy: FaultProxy
):
    proxy.add(Fault(is_request("POST", "/api/templates"), status=503))
    with (
        Client(account.api_key, base_url=proxy.url, retry=FAST_RETRIES) as through_proxy,
        pytest.raises(ServerError) as failed,
    ):
        through_proxy.templates.create("Once", TINY_SCRIPT)

    assert failed.value.status == 503
    assert len(proxy.requests_to("POST", "/api/templates")) == 1


def test_a_rate_limited_call_waits_for_retry_after_then_succeeds(server: LiveServer):
    tight = server.open_account(plan="pro", credits=10)
    server.change_plan(tight.account_id, "enterprise", requests_per_minute=1)
    retries: list[RetryEvent] = []
    policy = RetryPolicy(max_retries=3, on_retry=retries.append)

    with Client(tight.api_key, base_url=server.url, retry=policy) as limited:
        limited.credits.balance()
        assert limited.credits.balance().credits == 10  # over the limit: waits, then passes

    assert retries and all(r.status == 429 for r in retries)
    assert 0 < retries[0].delay <= 3  # Retry-After (at most the 2 s window) plus jitter


def test_a_retry_after_longer_than_the_policy_allows_raises_at_once(server: LiveServer):
    tight = server.open_account(plan="pro", credits=10)
    server.change_plan(tight.account_id, "enterprise", requests_per_minute=1)
    policy = RetryPolicy(max_retry_after=0)

    with Client(tight.api_key, base_url=server.url, retry=policy) as limited:
        limited.credits.balance()
        with pytest.raises(RateLimitError) as limited_error:
            limited.credits.balance()
            limited.credits.balance()
    assert limited_error.value.code == "RATE_LIMIT_EXCEEDED"
    assert 1 <= limited_error.value.retry_after <= 2


def test_a_server_that_is_not_there_is_retried_then_reported():
    retries: list[RetryEvent] = []
    policy = RetryPolicy(max_retries=2, backoff=0.01, on_retry=retries.append)
    with (
        Client("ve_live_x", base_url=f"http://127.0.0.1:{free_port()}", retry=policy) as nowhere,
        pytest.raises(APIConnectionError),
    ):
        nowhere.renders.create(TINY_SCRIPT)
    assert len(retries) == 2


# --- lists and paging ---------------------------------------------------------------------


def test_paging_iterators_walk_every_job_newest_first(sandbox: Client):
    submitted = [sandbox.renders.create(TINY_SCRIPT).job_id for _ in range(5)]
    deadline = time.monotonic() + 10
    while sandbox.jobs.list(limit=1).total < 5 and time.monotonic() < deadline:
        time.sleep(0.05)  # the list is the read model, a moment behind

    walked = [job.job_id for job in sandbox.jobs.iter(page_size=2)]
    page = sandbox.jobs.list(limit=2)

    assert walked == list(reversed(submitted))
    assert page.total == 5 and len(page.jobs) == 2


def test_job_history_is_the_stored_events(sandbox: Client):
    submission = sandbox.renders.create(TINY_SCRIPT)
    sandbox.jobs.wait(submission.job_id, timeout=30)
    history = sandbox.jobs.history(submission.job_id)

    types = [event.type for event in history.events]
    assert types[0].endswith("Submitted") and types[-1].endswith("Completed")
    assert [event.version for event in history.events] == list(range(1, len(types) + 1))


# --- templates, keys, credits -------------------------------------------------------------


def test_templates_are_created_changed_versioned_rendered_and_deleted(sandbox: Client):
    script = {
        **TINY_SCRIPT,
        "scenes": [
            {"duration": "{{seconds}}", "elements": [{"type": "text", "text": "{{title}}"}]}
        ],
    }
    created = sandbox.templates.create("Promo", script)
    changed = sandbox.templates.update(created.id, name="Promo 2", is_public=True)
    detail = sandbox.templates.get(created.id)
    first = sandbox.templates.get(created.id, version=1)
    versions = sandbox.templates.versions(created.id)
    submission = sandbox.templates.render(created.id, {"title": "Hi", "seconds": 1}, version=1)
    job = sandbox.jobs.wait(submission.job_id, timeout=30)
    listed = [template.id for template in sandbox.templates.list()]
    sandbox.templates.delete(created.id)

    assert (created.version, changed.version) == (1, 2)
    assert (
        detail.name == "Promo 2" and detail.is_public and detail.variables == ["seconds", "title"]
    )
    assert first.name == "Promo"
    assert [v.version for v in versions] == [2, 1] and versions[0].changed == ["name", "is_public"]
    assert job.status == "completed" and created.id in listed
    with pytest.raises(NotFoundError):
        sandbox.templates.get(created.id)


def test_keys_are_minted_listed_and_revoked(client: Client, server: LiveServer):
    minted = client.keys.create("test")
    assert minted.api_key.startswith("ve_test_") and minted.mode == "test"
    assert minted.id in {key.id for key in client.keys.list()}

    client.keys.revoke(minted.id)
    with (
        Client(minted.api_key, base_url=server.url) as revoked,
        pytest.raises(AuthenticationError),
    ):
        revoked.credits.balance()


def test_the_ledger_pages_iterates_and_downloads_as_csv(client: Client):
    before = client.credits.balance_at("2000-01-01T00:00:00Z")
    job = client.render(TINY_SCRIPT, timeout=120)

    page = client.credits.ledger(limit=1)
    entries = list(client.credits.iter_ledger(page_size=1))
    rows = list(csv.DictReader(io.StringIO(client.credits.ledger_csv())))
    for_job = client.credits.ledger(job_id=job.job_id)

    assert before.credits == 0
    assert page.total == len(entries) == len(rows) >= 2
    assert [entry.type for entry in entries][:2] == ["grant", "charge"]
    assert [int(row["amount"]) for row in rows] == [entry.amount for entry in entries]
    assert entries[-1].balance_after == client.credits.balance().credits
    assert {entry.job_id for entry in for_job.entries} == {job.job_id}


# --- webhooks ---------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint on loopback that keeps what it receives."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


def test_a_delivered_webhook_verifies_and_is_logged_and_redelivered(sandbox: Client, receiver):
    secret = sandbox.webhooks.secret().secret
    submission = sandbox.renders.create(TINY_SCRIPT, webhook_uri=receiver.url)
    receiver.wait_for(1)
    headers, body = receiver.received[0]

    payload = verify(secret, headers, body)
    assert payload["job_id"] == submission.job_id and payload["status"] == "completed"
    with pytest.raises(WebhookVerificationError):
        verify(secret, headers, body.replace(b"completed", b"failed!!!"))

    redelivery = sandbox.webhooks.redeliver(submission.job_id)
    receiver.wait_for(2)
    log = sandbox.webhooks.deliveries(submission.job_id)
    assert redelivery.status == "queued"
    assert verify(secret, receiver.received[1][0], receiver.received[1][1]) == payload
    assert log.status == "delivered" and [a.trigger for a in log.attempts] == [
        "automatic",
        "manual",
    ]


def test_after_a_rotation_both_secrets_verify(sandbox: Client, receiver):
    old = sandbox.webhooks.secret().secret
    rotated = sandbox.webhooks.rotate_secret()
    sandbox.renders.create(TINY_SCRIPT, webhook_uri=receiver.url)
    receiver.wait_for(1)
    headers, body = receiver.received[0]

    assert rotated.previous_secret_expires_at is not None
    assert verify(rotated.secret, headers, body) == verify(old, headers, body)


def test_verify_agrees_with_the_standard_webhooks_reference_library():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = json.dumps({"job_id": "j", "status": "completed"}).encode()
    now = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now)}
    headers["webhook-signature"] = Webhook(secret).sign("msg_1", _utc(now), body.decode())

    assert headers["webhook-signature"] == sign(secret, "msg_1", now, body)
    assert verify(secret, {k.upper(): v for k, v in headers.items()}, body) == json.loads(body)
    Webhook(secret).verify(body, {**headers, "webhook-signature": sign(secret, "msg_1", now, body)})
    with pytest.raises(WebhookVerificationError):
        verify(secret, {**headers, "webhook-timestamp": str(now - 600)}, body)
    with pytest.raises(WebhookVerificationError):
        verify("whsec_" + "A" * 32, headers, body)


def _utc(seconds: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC)


# --- the published documents, and the async client ----------------------------------------


def test_the_schema_and_openapi_documents_are_fetched(client: Client):
    assert client.schema.script()["$schema"].startswith("https://json-schema.org/")
    assert "/api/render" in client.schema.openapi()["paths"]


def test_the_async_client_renders_follows_and_pages(server: LiveServer, account):
    async def scenario() -> None:
        async with AsyncClient(account.test_api_key, base_url=server.url) as client:
            job = await client.render(TINY_SCRIPT, timeout=30)
            events = [event async for event in client.jobs.follow(job.job_id, last_event_id=0)]
            jobs = [found.job_id async for found in client.jobs.iter(page_size=1)]
            templates = await client.templates.list()
            balance = await client.credits.balance()
            assert job.status == "completed"
            assert isinstance(events[-1], CompleteEvent) and events[0].stage == "queued"
            assert job.job_id in jobs and templates == [] and balance.credits == 1000
            with pytest.raises(NotFoundError):
                await client.jobs.get("nope")

    asyncio.run(scenario())
