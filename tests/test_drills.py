"""Drills: PhantomFlow's processes on PostgreSQL and Redis, while things go wrong.

Each drill starts the production processes (`api`, `projections`, `worker`) and breaks
something as an operator's bad day would: a worker killed with `kill -9` mid-render,
Redis restarted empty, projections killed while clients submit. Afterwards every job
has ended, none was charged twice, and `phantomflow audit verify` is clean.

A drill that stops a service runs its own instance of it (tests/services.py). Leases
are short here (PHANTOMFLOW_RENDER_LEASE_SECONDS=3) so that recovery, bounded by the
lease plus the documented margin, fits in the suite's time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from phantomflow.adapters.settings import Settings
from phantomflow.adapters.topics import topics_of
from phantomflow.api.bootstrap import Runtime, build_runtime
from phantomflow.domain.accounts import CreditAccount
from phantomflow.domain.jobs import FINAL_STATUSES, RenderJob
from phantomflow.projections.jobs import replay
from tests.conftest import TINY_SCRIPT
from tests.processes import RunningSystem, base_env, call, request, start_production
from tests.services import PrivatePostgres, PrivateRedis

LEASE_SECONDS = 3.0
# What docs/operations.md promises beyond the lease: the dispatcher looks every second,
# an idle worker polls its queue at least every second, and a busy host is slower.
RESTART_MARGIN_SECONDS = 5.0

# A render of a few seconds (960x540, 60 s at 30 fps, low): long enough to be killed
# mid-way, short enough to render again.
KILLABLE = {
    "width": 960,
    "height": 540,
    "fps": 30,
    "quality": "low",
    "scenes": [
        {
            "duration": 60,
            "background": "#224488",
            "elements": [{"type": "text", "text": "Kill me", "font_size": 48}],
        }
    ],
}


@dataclass
class Drill:
    """A running production system, an account on it and a direct view of its store."""

    system: RunningSystem
    runtime: Runtime
    account_id: uuid.UUID
    api_key: str
    test_api_key: str

    def submit(self, script: dict[str, Any], sandbox: bool = False) -> uuid.UUID:
        key = self.test_api_key if sandbox else self.api_key
        answer = request("POST", f"{self.system.base_url}/api/render", key, script)
        return uuid.UUID(answer["job_id"])

    def job(self, job_id: uuid.UUID) -> RenderJob:
        return self.runtime.app.get_job(job_id)

    def account_jobs(self) -> list[uuid.UUID]:
        """Every job of the account, from the event store itself."""
        app = self.runtime.app
        found = []
        for notification in app.recorder.select_notifications(
            start=1, limit=1_000_000, topics=topics_of(RenderJob.Submitted)
        ):
            submitted = app.mapper.to_domain_event(notification)
            if submitted.account_id == self.account_id:
                found.append(submitted.originator_id)
        return found

    def wait(self, what: str, condition: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = condition()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.system.output()}")
            time.sleep(0.05)

    def wait_until_ended(self, job_ids: list[uuid.UUID], timeout: float) -> None:
        self.wait(
            "every job to end",
            lambda: all(self.job(job_id).status in FINAL_STATUSES for job_id in job_ids),
            timeout,
        )

    def kill_holder(self, job_id: uuid.UUID) -> str:
        """`kill -9` the worker process rendering the job (its `worker` names the pid)."""
        holder = self.job(job_id).worker
        assert holder is not None
        return self.system.kill_process_of(int(holder.split("-")[-2]))

    def assert_charged_once_and_audit_clean(self, job_ids: list[uuid.UUID]) -> None:
        app = self.runtime.app
        account_events = list(app.events.get(self.account_id))
        charges = [e for e in account_events if isinstance(e, CreditAccount.CreditsCharged)]
        live = [job_id for job_id in job_ids if not self.job(job_id).sandbox]
        assert sorted(str(e.job_id) for e in charges) == sorted(str(j) for j in live)
        granted = sum(
            e.amount for e in account_events if isinstance(e, CreditAccount.CreditsGranted)
        )
        used = 0
        for job_id in job_ids:
            history = list(app.events.get(job_id))
            endings = [e for e in history if isinstance(e, ENDINGS)]
            assert len(endings) == 1, [type(e).__name__ for e in history]
            used += self.job(job_id).credits_used or 0
        assert app.get_account(self.account_id).balance == granted - used
        status, report = self.system.cli_status("audit", "verify")
        assert status == 0, report


ENDINGS = (RenderJob.Completed, RenderJob.Failed, RenderJob.Cancelled)


def open_drill_account(system: RunningSystem, credits: int) -> dict[str, str]:
    """An enterprise account with limits out of the way of the drill's traffic."""
    account = system.cli("accounts", "create", "--plan", "pro", "--credits", str(credits))
    system.cli(
        "accounts", "plan", account["account_id"], "enterprise",
        "--requests-per-minute", "1000000", "--concurrent-jobs", "100000",
    )  # fmt: skip
    return account


@pytest.fixture
def start_drill(
    tmp_path: Path, postgres_schema: str, redis_url: str
) -> Iterator[Callable[..., Drill]]:
    """Start the production processes: on the test's PostgreSQL schema unless given a
    `database_url` (a private cluster), on the shared Redis unless given a `redis`."""
    started: list[Drill] = []

    def start(
        workers: int = 2,
        apis: int = 1,
        credits: int = 1000,
        redis: PrivateRedis | None = None,
        database_url: str | None = None,
    ) -> Drill:
        env = {**base_env(tmp_path), "PHANTOMFLOW_RENDER_LEASE_SECONDS": str(LEASE_SECONDS)}
        system = start_production(
            tmp_path,
            env,
            None if database_url else postgres_schema,
            redis.url if redis else redis_url,
            f"drill-{uuid.uuid4().hex[:8]}",
            **({"database_url": database_url} if database_url else {}),
            workers=workers,
            apis=apis,
        )
        try:
            system.wait_until_up()
            runtime = build_runtime(Settings.from_env(system.env))
        except BaseException:
            system.kill_all()
            raise
        account = open_drill_account(system, credits)
        drill = Drill(
            system,
            runtime,
            uuid.UUID(account["account_id"]),
            account["api_key"],
            account["test_api_key"],
        )
        started.append(drill)
        return drill

    yield start
    for drill in started:
        drill.system.kill_all()
        drill.runtime.close()


@pytest.fixture
def drill_redis(private_redis: PrivateRedis) -> PrivateRedis:
    private_redis.start()
    return private_redis


@pytest.fixture
def drill(start_drill: Callable[..., Drill], drill_redis: PrivateRedis) -> Drill:
    """Two workers, on a Redis of the drill's own (which it may restart empty)."""
    return start_drill(redis=drill_redis)


def started_at(drill: Drill, job_id: uuid.UUID, attempt: int) -> datetime | None:
    for event in drill.runtime.app.events.get(job_id):
        if isinstance(event, RenderJob.Started) and event.attempt == attempt:
            return event.timestamp
    return None


@pytest.mark.parametrize("redis", ["kept", "restarted-empty"])
def test_a_worker_killed_mid_render_has_its_job_rendered_by_another_within_the_lease_once(
    drill: Drill, drill_redis: PrivateRedis, redis: str
):
    job_id = drill.submit(KILLABLE)
    drill.wait(
        "the render to be under way",
        lambda: (job := drill.job(job_id)).status == "processing" and job.progress > 0,
        timeout=60,
    )
    drill.kill_holder(job_id)
    killed_at = datetime.now(UTC)
    if redis == "restarted-empty":
        # Everything Dramatiq knew (the dead worker's unacknowledged message) is gone.
        drill_redis.restart_empty()

    restarted = drill.wait(
        "another attempt", lambda: started_at(drill, job_id, attempt=2), timeout=60
    )
    recovery = (restarted - killed_at).total_seconds()
    print(f"\nkill -9 to restart ({redis} Redis): {recovery:.1f} s (lease {LEASE_SECONDS:g} s)")
    assert recovery <= LEASE_SECONDS + RESTART_MARGIN_SECONDS

    drill.wait_until_ended([job_id], timeout=120)
    job = drill.job(job_id)
    assert (job.status, job.attempts) == ("completed", 2)
    drill.assert_charged_once_and_audit_clean([job_id])


# How many workers the repeated drill kills (each one mid-render).
KILLS = 3


def test_workers_killed_mid_render_again_and_again_leave_every_job_ended_and_charged_once(
    drill: Drill, tmp_path: Path
):
    long_jobs = [drill.submit(KILLABLE) for _ in range(KILLS)]
    short_jobs = [drill.submit(TINY_SCRIPT) for _ in range(4)]
    killed: set[str] = set()  # the attempts killed (a worker name per attempt)

    def under_way() -> uuid.UUID | None:
        """A long job some live worker is rendering now."""
        for job_id in long_jobs:
            job = drill.job(job_id)
            if job.status == "processing" and job.progress > 0 and job.worker not in killed:
                return job_id
        return None

    for round_number in range(1, KILLS + 1):
        victim = drill.wait(f"a render under way (round {round_number})", under_way, 120)
        killed.add(str(drill.job(victim).worker))
        drill.kill_holder(victim)
        # As a supervisor would: a new worker in place of the dead one.
        drill.system.start_worker(tmp_path / f"worker-replacing-{round_number}.log")

    drill.wait_until_ended(long_jobs + short_jobs, timeout=240)
    assert [drill.job(job_id).status for job_id in long_jobs + short_jobs] == ["completed"] * (
        KILLS + 4
    )
    assert sum(drill.job(job_id).attempts - 1 for job_id in long_jobs) >= KILLS
    drill.assert_charged_once_and_audit_clean(long_jobs + short_jobs)


def test_every_job_accepted_while_redis_is_down_or_lost_with_its_data_completes(
    drill: Drill, drill_redis: PrivateRedis
):
    # Two long renders occupy both workers, so the next jobs wait in Redis's queue.
    busy = [drill.submit(KILLABLE) for _ in range(2)]
    drill.wait(
        "both workers busy",
        lambda: all(drill.job(job_id).status == "processing" for job_id in busy),
        timeout=60,
    )
    waiting = [drill.submit(TINY_SCRIPT) for _ in range(3)]
    queued_when_lost = [job_id for job_id in waiting if drill.job(job_id).status == "queued"]
    drill_redis.stop()
    # Redis is down: submissions are still accepted (the dispatcher sends them later).
    while_down = []
    for _ in range(3):
        status, body, _ = call("POST", f"{drill.system.base_url}/api/render", drill.api_key,
                               TINY_SCRIPT)  # fmt: skip
        assert status == 202, body
        while_down.append(uuid.UUID(body["job_id"]))
    time.sleep(1)
    drill_redis.start()  # empty: the waiting jobs' messages are gone

    everything = busy + waiting + while_down
    drill.wait_until_ended(everything, timeout=120)
    assert queued_when_lost, "no message was waiting in Redis when it lost its data"
    assert {drill.job(job_id).status for job_id in everything} == {"completed"}
    drill.assert_charged_once_and_audit_clean(everything)


def test_projections_killed_while_clients_submit_leave_a_read_model_equal_to_the_event_store(
    drill: Drill, tmp_path: Path
):
    submitted: list[uuid.UUID] = []
    for _ in range(2):
        for index in range(12):
            submitted.append(drill.submit(TINY_SCRIPT, sandbox=index % 4 != 0))
            if index == 5:
                drill.system.kill("projections.log")
        time.sleep(0.5)
        drill.system.start("projections", log=tmp_path / "projections.log")

    drill.wait_until_ended(submitted, timeout=120)
    runtime = drill.runtime
    head = runtime.app.recorder.max_notification_id()
    drill.wait("the read model to catch up", lambda: runtime.jobs_runner.position() >= head, 30)
    account = str(drill.account_id)
    for sandbox in (False, True):
        listed = runtime.jobs.page(account, None, 1, 100, sandbox).jobs
        read_model = {doc["job_id"]: doc for doc in listed}
        expected = {}
        for job_id in submitted:
            row = replay(runtime.app.events.get(job_id))
            assert row is not None
            if row["doc"]["sandbox"] == sandbox:
                expected[str(job_id)] = row["doc"]
        assert read_model == expected
    drill.assert_charged_once_and_audit_clean(submitted)


def test_hundreds_of_racing_submissions_on_credit_for_a_few_accept_exactly_that_many(
    start_drill: Callable[..., Drill],
):
    # Two API processes on one port, so the race is between processes too; no worker:
    # the jobs only need to be accepted or refused.
    drill = start_drill(workers=0, apis=2, credits=40)
    url = f"{drill.system.base_url}/api/render"
    barrier = threading.Barrier(50)

    def submit(_: int) -> int:
        if _ < 50:
            barrier.wait()
        return call("POST", url, drill.api_key, TINY_SCRIPT, timeout=60)[0]

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(submit, range(200)))

    assert (statuses.count(202), statuses.count(402)) == (40, 160), sorted(set(statuses))
    account_events = list(drill.runtime.app.events.get(drill.account_id))
    balance = 0
    for event in account_events:
        if isinstance(event, CreditAccount.CreditsGranted):
            balance += event.amount
        elif isinstance(event, CreditAccount.CreditsCharged):
            balance -= event.amount
        assert balance >= 0
    assert balance == 0 == drill.runtime.app.get_account(drill.account_id).balance
    assert len(drill.account_jobs()) == 40
    status, report = drill.system.cli_status("audit", "verify")
    assert status == 0, report


@dataclass(frozen=True)
class Answer:
    began: float
    ended: float
    what: str
    status: int


def test_postgresql_restarted_under_load_gives_no_500_and_503s_only_while_it_is_down(
    start_drill: Callable[..., Drill], private_postgres: PrivatePostgres
):
    drill = start_drill(workers=1, database_url=private_postgres.url)
    base = drill.system.base_url
    answers: list[Answer] = []
    stop = threading.Event()

    def load(number: int) -> None:
        turn = 0
        while not stop.is_set():
            turn += 1
            began = time.monotonic()
            if turn % 5:
                status = call("GET", f"{base}/api/jobs?limit=5", drill.api_key, timeout=30)[0]
                what = "read"
            else:  # mostly sandbox jobs (no FFmpeg), now and then a live one
                key = drill.api_key if (turn + 5 * number) % 25 == 0 else drill.test_api_key
                status = call("POST", f"{base}/api/render", key, TINY_SCRIPT, timeout=30)[0]
                what = "submit"
            answers.append(Answer(began, time.monotonic(), what, status))
            time.sleep(0.05)

    threads = [threading.Thread(target=load, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        going_down = time.monotonic()
        private_postgres.stop()
        time.sleep(3)
        private_postgres.start()
        back = time.monotonic()
        time.sleep(4)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

    statuses = {answer.status for answer in answers}
    assert statuses <= {200, 202, 503}, sorted(statuses)
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable, "no request met the outage"
    # 503 only while PostgreSQL was down (and the moment it takes to see it back).
    assert all(going_down <= a.ended and a.began <= back + 1.0 for a in unavailable)
    assert all(a.status in (200, 202) for a in answers if a.ended < going_down)
    assert all(a.status in (200, 202) for a in answers if a.began > back + 1.0)
    slowest_refusal = max(a.ended - a.began for a in unavailable)
    served_again = min(a.ended for a in answers if a.began >= back and a.status != 503)
    print(
        f"\n{len(unavailable)} of {len(answers)} answers 503 while PostgreSQL was down;"
        f" slowest 503 {slowest_refusal:.2f} s; served again {served_again - back:.2f} s"
        " after PostgreSQL accepted connections"
    )
    assert slowest_refusal < 6
    assert served_again - back < 2

    # Nothing lost, nothing half written: every accepted job ends, charged once. A
    # submission answered 503 was not recorded (or, at most, its answer was lost just
    # as it committed: then it is a job like any other).
    accepted = sum(1 for a in answers if a.what == "submit" and a.status == 202)
    refused = sum(1 for a in answers if a.what == "submit" and a.status == 503)
    jobs = drill.account_jobs()
    assert accepted <= len(jobs) <= accepted + refused
    drill.wait_until_ended(jobs, timeout=120)
    drill.assert_charged_once_and_audit_clean(jobs)
