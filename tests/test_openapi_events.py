"""Every event the event streams can send is a named component of the OpenAPI document.

The histories below record every kind of event a job and a preview can record (a new
kind fails the first test until it is added here); each is put through what each
stream makes of it (api/sse.py, api/previews.py), and whatever comes out must be an
event the stream's document names, with data of that event's schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.domain import AggregateCreated, AggregateEvent

from phantomflow.api.event_hub import Item
from phantomflow.api.openapi import openapi_document
from phantomflow.api.previews import preview_event
from phantomflow.api.sse import account_event, progress_event
from phantomflow.domain.jobs import RenderJob, WebhookAttempt
from phantomflow.domain.previews import Preview
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT
from tests.test_openapi import check_events

BASE = "http://api.example"
LEASE = timedelta(minutes=30)


def kinds_of(aggregate: type, created: type) -> set[str]:
    """The events `aggregate` can record: not the base classes they share, nor a creation
    event other than `created` (eventsourcing declares a `Created` for every aggregate)."""
    classes = [
        cls
        for cls in vars(aggregate).values()
        if isinstance(cls, type)
        and issubclass(cls, AggregateEvent)
        and (cls is created or not issubclass(cls, AggregateCreated))
    ]
    return {
        cls.__name__
        for cls in classes
        if not any(other is not cls and issubclass(other, cls) for other in classes)
    }


def new_job(**options: Any) -> RenderJob:
    return RenderJob(
        account_id=uuid.uuid4(), script=TINY_SCRIPT, estimated_credits=1, quality="low",
        webhook_uri="https://hooks.example/h", origin={}, metadata={"order": "42"}, **options,
    )  # fmt: skip


def job_histories() -> list[list[Any]]:
    """Jobs that between them record every kind of job event."""
    now = datetime.now(UTC)
    targets = [{"type": t, "integration_id": "int_" + c * 32} for t, c in [("s3", "a"),
               ("sftp", "b"), ("ftp", "c"), ("email", "d")]]  # fmt: skip
    exported = new_job(exports=targets)
    exported.start("worker-a", lease_seconds=60)
    exported.renew_lease("worker-a", 1)
    exported.report_progress(0.5, "rendering_scene_1")
    exported.complete("x.mp4", 1.0, 100, 1, poster_location="x.jpg")
    for index in range(3):
        exported.start_export(index, 1, now, LEASE)
    exported.succeed_export(0, 1, "s3://bucket/x.mp4", 100, 12)
    exported.fail_export(1, 1, "CONNECTION_FAILED", "refused", now + timedelta(seconds=30))
    exported.fail_export(2, 1, "AUTH_FAILED", "refused", None)
    exported.skip_export(3, "SANDBOX_SKIPPED", "not from sandbox keys")
    exported.start_export(1, 2, now, LEASE)
    exported.succeed_export(1, 2, "sftp://host/x.mp4", 100, 9)  # settles them all
    attempt = WebhookAttempt(
        trigger="automatic", sequence=1, url="https://hooks.example/h", status_code=503,
        error="HTTP 503", duration_ms=40, next_attempt_at=None,
    )  # fmt: skip
    exported.record_webhook_attempt(attempt)
    exported.request_webhook_redelivery()
    deleted = new_job(exports=targets[:1])
    deleted.start("worker-a")
    deleted.complete("y.mp4", 1.0, 100, 1)
    deleted.delete_output()  # ends its unsettled export
    cancelled = new_job()
    cancelled.cancel(0, "cancelled by the customer")
    failed = new_job()
    failed.start("worker-a")
    failed.fail("RENDER_FAILED", "boom")
    return [job.collect_events() for job in (exported, deleted, cancelled, failed)]


def preview_histories() -> list[tuple[Preview, list[Any]]]:
    """Previews that between them record every kind of preview event."""

    def new_preview() -> Preview:
        script = MovieScript.from_dict(TINY_SCRIPT).to_dict()
        return Preview.create(uuid.uuid4(), script, {"channel": "api"}, None, False)

    drawn = new_preview()
    drawn.start("worker-a")
    drawn.report_progress(0.2, "storyboard")
    frame = {"scene": 0, "kind": "scene", "time": 0.5, "location": "p/0.jpg"}
    drawn.storyboard_drawn([frame])
    drawn.proxy_drawn("p/proxy.mp4", 1.0, 320, 240, 12.0, 1000)
    drawn.expire()
    failed = new_preview()
    failed.start("worker-a")
    failed.fail("RENDER_FAILED", "boom")
    deleted = new_preview()
    deleted.delete()
    return [(p, p.collect_events()) for p in (drawn, failed, deleted)]


def test_the_histories_record_every_kind_of_event_a_job_or_a_preview_can_record():
    recorded = {type(e).__name__ for history in job_histories() for e in history}
    assert kinds_of(RenderJob, RenderJob.Submitted) - recorded == set(), (
        "add these job events to the histories"
    )
    recorded = {type(e).__name__ for _, history in preview_histories() for e in history}
    assert kinds_of(Preview, Preview.Created) - recorded == set(), (
        "add these preview events to the histories"
    )


def as_frames(mapped: list[tuple[str, dict[str, Any]] | None]) -> list[tuple[str, str, Any]]:
    """The stream's events as a parser reads them (data through JSON, as sent)."""
    return [
        (str(position), name, json.loads(json.dumps(data)))
        for position, (name, data) in enumerate((m for m in mapped if m is not None), 1)
    ]


def item(event: Any, metadata: dict[str, Any] | None = None) -> Item:
    return Item(1, event.originator_id, None, event, metadata=metadata)


def test_every_event_a_job_stream_sends_is_documented():
    sent = as_frames(
        [
            progress_event(event, BASE, {"order": "42"})
            for history in job_histories()
            for event in history
        ]
    )
    check_events(sent, "/api/jobs/{job_id}/progress")
    assert {name for _, name, _ in sent} == {"progress", "complete", "error", "export"}


def test_every_event_the_account_stream_sends_is_documented():
    events = [e for history in job_histories() for e in history]
    events += [e for _, history in preview_histories() for e in history]
    sent = as_frames([account_event(item(event, {"order": "42"}), BASE) for event in events])
    check_events(sent, "/api/events")
    assert {name for _, name, _ in sent} == {"progress", "complete", "error", "export", "webhook"}


def test_every_event_a_preview_stream_sends_is_documented():
    sent = as_frames(
        [
            preview_event(event, preview, BASE)
            for preview, history in preview_histories()
            for event in history
        ]
    )
    check_events(sent, "/api/previews/{preview_id}/progress")
    assert {name for _, name, _ in sent} == {"progress", "storyboard", "complete", "error"}


def test_each_stream_documents_only_events_it_sends():
    """The other way round: no stream's document names an event no history produced."""
    schemas = openapi_document()["components"]["schemas"]
    documented = {
        stream: set(schemas[stream]["discriminator"]["mapping"])
        for stream in ("JobStreamEvent", "AccountStreamEvent", "PreviewStreamEvent")
    }
    assert documented == {
        "JobStreamEvent": {"progress", "complete", "error", "export"},
        "AccountStreamEvent": {"progress", "complete", "error", "export", "webhook"},
        "PreviewStreamEvent": {"progress", "storyboard", "complete", "error"},
    }
