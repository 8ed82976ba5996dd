"""Exports on the job aggregate: attempts, retries, settlement and deleting outputs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from phantomflow.domain import exports as ex
from phantomflow.domain.errors import IllegalJobTransition
from phantomflow.domain.integrations import (
    Integration,
    IntegrationNotFound,
    integration_ref,
    parse_integration_ref,
)
from phantomflow.domain.jobs import RenderJob
from tests.conftest import TINY_SCRIPT

LEASE = timedelta(minutes=30)
TARGETS = [
    {"type": "s3", "integration_id": "int_" + "a" * 32},
    {"type": "sftp", "integration_id": "int_" + "b" * 32},
]


def completed_job(targets=TARGETS) -> RenderJob:
    job = RenderJob(
        account_id=uuid.uuid4(),
        script=TINY_SCRIPT,
        estimated_credits=1,
        quality="low",
        webhook_uri=None,
        origin={},
        exports=[dict(t) for t in targets],
    )
    job.start("w")
    job.complete("x.mp4", 1.0, 100, 1)
    return job


def names(job: RenderJob) -> list[str]:
    return [type(e).__name__ for e in job.collect_events()]


def test_exports_wait_for_the_render_and_settle_once_all_have_an_outcome():
    job = RenderJob(
        account_id=uuid.uuid4(), script=TINY_SCRIPT, estimated_credits=1, quality="low",
        webhook_uri=None, origin={}, exports=TARGETS,
    )  # fmt: skip
    with pytest.raises(ex.IllegalExportTransition):
        job.start_export(0, 1, datetime.now(UTC), LEASE)
    job = completed_job()
    job.collect_events()
    now = datetime.now(UTC)
    job.start_export(0, 1, now, LEASE)
    job.start_export(1, 1, now, LEASE)
    job.succeed_export(0, 1, "s3://b/x.mp4", 100, 12)
    assert not job.exports_settled
    job.fail_export(1, 1, "AUTH_FAILED", "refused", None)
    assert job.exports_settled
    assert names(job) == [
        "ExportStarted", "ExportStarted", "ExportSucceeded", "ExportFailed", "ExportsSettled",
    ]  # fmt: skip
    assert [s["status"] for s in job.export_states] == ["succeeded", "failed"]
    assert job.export_states[0]["location"] == "s3://b/x.mp4"


def test_a_failed_attempt_waits_for_its_next_and_a_duplicate_start_is_refused():
    job = completed_job(TARGETS[:1])
    now = datetime.now(UTC)
    job.start_export(0, 1, now, LEASE)
    with pytest.raises(ex.IllegalExportTransition):
        job.start_export(0, 1, now, LEASE)  # the same message twice
    job.fail_export(0, 1, "CONNECTION_FAILED", "refused", now + timedelta(seconds=30))
    assert (job.export_states[0]["status"], job.export_states[0]["attempts"]) == ("pending", 1)
    assert not job.exports_settled
    with pytest.raises(ex.IllegalExportTransition):
        job.start_export(0, 3, now, LEASE)  # not its turn
    job.start_export(0, 2, now, LEASE)
    job.succeed_export(0, 2, "s3://b/x.mp4", 100, 5)
    assert job.exports_settled and job.export_states[0]["error"] is None


def test_an_attempt_whose_worker_went_quiet_is_taken_over_after_the_lease():
    job = completed_job(TARGETS[:1])
    started = datetime.now(UTC)
    job.start_export(0, 1, started, LEASE)
    with pytest.raises(ex.IllegalExportTransition):
        job.start_export(0, 1, started + LEASE / 2, LEASE)
    job.start_export(0, 1, started + LEASE, LEASE)
    assert job.export_states[0]["attempts"] == 1


def test_retry_delays_are_bounded_to_about_a_day():
    assert sum(ex.RETRY_DELAYS) < 24 * 3600
    assert ex.next_attempt_delay(1) == 30
    assert ex.next_attempt_delay(len(ex.RETRY_DELAYS) + 1) is None


def test_skipped_exports_settle_and_a_job_that_did_not_complete_runs_none():
    job = completed_job(TARGETS[:1])
    job.skip_export(0, "SANDBOX", "not from sandbox keys")
    assert job.exports_settled and names(job)[-1] == "ExportsSettled"
    failed = RenderJob(
        account_id=uuid.uuid4(), script=TINY_SCRIPT, estimated_credits=1, quality="low",
        webhook_uri=None, origin={}, exports=TARGETS,
    )  # fmt: skip
    failed.fail("RENDER_FAILED", "boom")
    assert failed.exports_settled
    with pytest.raises(ex.IllegalExportTransition):
        failed.skip_export(0, "X", "y")


def test_deleting_the_output_ends_unsettled_exports_and_happens_once():
    job = completed_job()
    now = datetime.now(UTC)
    job.start_export(0, 1, now, LEASE)
    job.succeed_export(0, 1, "s3://b/x.mp4", 100, 12)
    job.collect_events()
    assert job.delete_output() == [1]
    assert names(job) == ["OutputDeleted", "ExportsSettled"]
    assert job.output_deleted
    assert job.export_states[1]["error"]["code"] == "OUTPUT_DELETED"
    assert job.export_states[0]["status"] == "succeeded"
    with pytest.raises(IllegalJobTransition):
        job.delete_output()
    with pytest.raises(ex.IllegalExportTransition):
        job.start_export(1, 2, now, LEASE)
    queued = RenderJob(
        account_id=uuid.uuid4(), script=TINY_SCRIPT, estimated_credits=1, quality="low",
        webhook_uri=None, origin={},
    )  # fmt: skip
    with pytest.raises(IllegalJobTransition):
        queued.delete_output()


def test_a_job_without_exports_reads_as_before():
    job = completed_job([])
    assert job.exports == [] and job.exports_settled
    assert job.delete_output() == []


def test_integrations_are_seen_only_by_their_account_and_key_mode():
    account = uuid.uuid4()
    integration = Integration(
        id=uuid.uuid4(), account_id=account, sandbox=False, type="sftp", name="n",
        settings={"host": "h"}, sealed_secrets="v1:xx", secret_hints={"password": None},
    )  # fmt: skip
    integration.check_usable_by(account, sandbox=False)
    for other, sandbox in ((uuid.uuid4(), False), (account, True)):
        with pytest.raises(IntegrationNotFound):
            integration.check_usable_by(other, sandbox)
    integration.delete()
    with pytest.raises(IntegrationNotFound):
        integration.check_usable_by(account, False)
    with pytest.raises(IntegrationNotFound):
        integration.delete()
    ref = integration_ref(integration.id)
    assert ref.startswith("int_") and parse_integration_ref(ref) == integration.id
    assert parse_integration_ref("int_nothex") is None and parse_integration_ref(7) is None
