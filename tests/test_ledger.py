"""Credits an auditor can follow: the ledger, the balance at any instant, job histories,
and a reconciliation that catches any difference."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.cli import main
from phantomflow.api.services import Services
from phantomflow.domain.script import MovieScript
from phantomflow.projections.audit import reconcile
from phantomflow.projections.ledger import TABLE
from phantomflow.projections.runner import FollowerThreads
from tests.conftest import TINY_SCRIPT

FIVE_CREDITS = {
    **TINY_SCRIPT,
    "width": 1920,
    "height": 1080,
    "quality": "high",
    "scenes": [{"duration": 5}],
}


@pytest.fixture
async def client(runtime) -> AsyncIterator[TestClient]:
    followers = FollowerThreads(runtime.read_models)
    followers.start()
    async with TestClient(TestServer(create_app(Services(runtime)))) as test_client:
        yield test_client
    followers.stop()


def instant() -> datetime:
    """Now, with a moment's gap either side so events fall clearly before or after."""
    time.sleep(0.01)
    now = datetime.now(UTC)
    time.sleep(0.01)
    return now


def life_of_two_jobs(runtime):
    """Open with 100; job A settles at 4 of 5; job B fails. Returns instants between."""
    app = runtime.app
    marks = {"before_opening": instant()}
    account = app.open_account(plan="pro", credits=100)
    marks["opened"] = instant()
    job_a = app.submit_render(
        account.account_id, MovieScript.from_dict(FIVE_CREDITS), None, {}
    ).job_id
    marks["charged_a"] = instant()
    app.start_job(app.get_job(job_a), "w1", lease_seconds=60)
    app.complete_job(job_a, "a.mp4", duration_seconds=3.2, file_size_bytes=10)
    marks["settled_a"] = instant()
    job_b = app.submit_render(
        account.account_id, MovieScript.from_dict(FIVE_CREDITS), None, {}
    ).job_id
    marks["charged_b"] = instant()
    app.fail_job(job_b, "RENDER_FAILED", "bad source")
    marks["refunded_b"] = instant()
    app.grant_credits(account.account_id, 7, reason="goodwill")
    return account, job_a, job_b, marks


def caught_up(runtime) -> None:
    """Bring the read models to the head of the log (no followers running)."""
    for runner in runtime.read_models:
        runner.catch_up()


def settled(runtime) -> None:
    """Wait for the background followers to reach the head of the log."""
    head = runtime.app.recorder.max_notification_id()
    for runner in runtime.read_models:
        assert runner.wait_for(head, timeout=10)


async def test_ledger_lists_every_movement_with_its_job_reason_and_running_balance(client, runtime):
    account, job_a, job_b, _ = life_of_two_jobs(runtime)
    settled(runtime)
    headers = {"x-api-key": account.api_key}
    body = await (await client.get("/api/credits/ledger", headers=headers)).json()
    moves = [(e["type"], e["amount"], e["balance_after"], e["job_id"]) for e in body["entries"]]
    assert moves == [
        ("grant", 100, 100, None),
        ("charge", -5, 95, str(job_a)),
        ("settlement_refund", 1, 96, str(job_a)),
        ("charge", -5, 91, str(job_b)),
        ("failure_refund", 5, 96, str(job_b)),
        ("grant", 7, 103, None),
    ]
    assert body["totals"] == {
        "grant": 107,
        "charge": -10,
        "settlement_refund": 1,
        "failure_refund": 5,
        "cancellation_refund": 0,
    }
    assert body["entries"][-1]["reason"] == "goodwill"
    credits = await (await client.get("/api/credits", headers=headers)).json()
    assert credits == {"credits": 103, "currency": "credits"}


async def test_cancellations_appear_in_the_ledger_as_cancellation_refunds(client, runtime):
    app = runtime.app
    account = app.open_account(plan="pro", credits=20)
    queued = app.submit_render(
        account.account_id, MovieScript.from_dict(FIVE_CREDITS), None, {}
    ).job_id
    app.cancel_job(queued)  # nothing rendered: all 5 back
    halfway = app.submit_render(
        account.account_id, MovieScript.from_dict(FIVE_CREDITS), None, {}
    ).job_id
    app.start_job(app.get_job(halfway), "w1", lease_seconds=60)
    app.report_progress(app.get_job(halfway), 0.5, "rendering_scene_1")
    app.cancel_job(halfway)  # 2.5 s of 1080p high rendered: 3 credits kept, 2 back
    settled(runtime)
    headers = {"x-api-key": account.api_key}
    body = await (await client.get("/api/credits/ledger", headers=headers)).json()
    moves = [(e["type"], e["amount"], e["balance_after"], e["job_id"]) for e in body["entries"]]
    assert moves == [
        ("grant", 20, 20, None),
        ("charge", -5, 15, str(queued)),
        ("cancellation_refund", 5, 20, str(queued)),
        ("charge", -5, 15, str(halfway)),
        ("cancellation_refund", 2, 17, str(halfway)),
    ]
    assert body["totals"]["cancellation_refund"] == 7
    assert body["totals"]["failure_refund"] == body["totals"]["settlement_refund"] == 0
    only = await client.get("/api/credits/ledger?type=cancellation_refund", headers=headers)
    assert [e["job_id"] for e in (await only.json())["entries"]] == [str(queued), str(halfway)]


async def test_ledger_filters_by_job_type_and_period_and_downloads_as_csv(client, runtime):
    account, job_a, _, marks = life_of_two_jobs(runtime)
    settled(runtime)
    headers = {"x-api-key": account.api_key}

    by_job = await (await client.get(f"/api/credits/ledger?job_id={job_a}", headers=headers)).json()
    assert [e["type"] for e in by_job["entries"]] == ["charge", "settlement_refund"]
    refunds = await (
        await client.get("/api/credits/ledger?type=failure_refund", headers=headers)
    ).json()
    assert [e["amount"] for e in refunds["entries"]] == [5]
    start, end = marks["opened"].isoformat(), marks["charged_b"].isoformat()
    period = await (
        await client.get("/api/credits/ledger", params={"from": start, "to": end}, headers=headers)
    ).json()
    assert [e["type"] for e in period["entries"]] == ["charge", "settlement_refund", "charge"]
    assert period["totals"]["charge"] == -10

    download = await client.get("/api/credits/ledger?format=csv", headers=headers)
    assert download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await download.text())))
    assert [int(r["balance_after"]) for r in rows] == [100, 95, 96, 91, 96, 103]


async def test_balance_at_any_instant_is_replayed_from_the_events(client, runtime):
    account, _, _, marks = life_of_two_jobs(runtime)
    headers = {"x-api-key": account.api_key}
    expected = {
        "before_opening": 0,
        "opened": 100,
        "charged_a": 95,
        "settled_a": 96,
        "charged_b": 91,
        "refunded_b": 96,
    }
    for mark, credits in expected.items():
        response = await client.get(
            "/api/credits/balance", params={"at": marks[mark].isoformat()}, headers=headers
        )
        assert (await response.json())["credits"] == credits, mark
    now = await client.get(
        "/api/credits/balance", params={"at": datetime.now(UTC).isoformat()}, headers=headers
    )
    assert (await now.json())["credits"] == 103


@pytest.mark.parametrize(
    ("query", "path"),
    [("", "at"), ("?at=yesterday", "at")],
)
async def test_balance_at_needs_an_iso_instant(client, runtime, query, path):
    account = runtime.app.open_account(plan="pro", credits=1)
    response = await client.get(
        f"/api/credits/balance{query}", headers={"x-api-key": account.api_key}
    )
    assert response.status == 400
    assert (await response.json())["error"]["path"] == path


async def test_a_jobs_history_is_readable_by_its_owner_only(client, runtime):
    account, job_a, _, _ = life_of_two_jobs(runtime)
    response = await client.get(f"/api/jobs/{job_a}/events", headers={"x-api-key": account.api_key})
    history = (await response.json())["events"]
    assert [e["type"] for e in history] == ["Submitted", "Started", "Completed"]
    assert [e["version"] for e in history] == [1, 2, 3]
    assert history[2]["data"]["credits_used"] == 4
    other = runtime.app.open_account(plan="pro", credits=0)
    hidden = await client.get(f"/api/jobs/{job_a}/events", headers={"x-api-key": other.api_key})
    assert hidden.status == 404


def test_audit_agrees_three_ways_and_catches_a_tampered_ledger(runtime):
    life_of_two_jobs(runtime)
    runtime.app.open_account(plan="free", credits=0)
    caught_up(runtime)
    checks = reconcile(runtime.app, runtime.ledger)
    assert len(checks) == 2 and all(check.agrees for check in checks)

    with runtime.views.transaction() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET balance_after = balance_after + 1")
    assert not all(check.agrees for check in reconcile(runtime.app, runtime.ledger))

    # The events are the truth: rebuilding the ledger from them mends it.
    runtime.ledger_runner.rebuild()
    assert all(check.agrees for check in reconcile(runtime.app, runtime.ledger))


def test_audit_verify_and_rebuild_commands(sqlite_settings, monkeypatch, capsys):
    monkeypatch.setenv("PHANTOMFLOW_DATA_DIR", str(sqlite_settings.data_dir))
    from phantomflow.api.bootstrap import build_runtime

    runtime = build_runtime(sqlite_settings)
    try:
        life_of_two_jobs(runtime)
        caught_up(runtime)
        with runtime.views.read() as cursor:
            cursor.execute(f"SELECT * FROM {TABLE} ORDER BY seq")
            before = cursor.fetchall()
    finally:
        runtime.close()

    assert main(["audit", "verify"]) == 0
    assert "1 accounts, 0 with differences" in capsys.readouterr().out
    assert main(["projections", "rebuild"]) == 0
    runtime = build_runtime(sqlite_settings)
    try:
        with runtime.views.read() as cursor:
            cursor.execute(f"SELECT * FROM {TABLE} ORDER BY seq")
            assert cursor.fetchall() == before
    finally:
        runtime.close()


def test_unknown_account_balance_is_not_found(runtime):
    from phantomflow.domain.errors import AccountNotFound

    with pytest.raises(AccountNotFound):
        runtime.app.balance_at(uuid.uuid4(), datetime.now(UTC))
