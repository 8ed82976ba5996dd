"""A job's public shape, from its events: the one fold that the jobs read model, live
progress, webhooks and the delivery log share.

`changes(event)` is what one job event changes in the job's public document (None for
the events that change nothing a client sees: webhook attempts and redelivery
requests); `document(events)` folds a job's events into that document. Who uses it:

- the jobs read model stores the document (`projections/jobs.py`), and the API shows
  it with URLs in place of storage locations (`public_view`);
- an event stream sends each change as it happens (`api/sse.py`);
- a webhook sends the ended job's document (`webhook_body`, `workers/webhooks.py`);
- the delivery log shows each attempt (`attempt_view`, `api/webhooks.py`).

Only the events' own data goes in (never the clock), so a document rebuilt from the
same events is the same, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from phantomflow.domain.jobs import CANCELLED, COMPLETED, FAILED, PROCESSING, QUEUED, RenderJob
from phantomflow.projections.timestamps import iso


def output_url(base: str | None, location: str | None) -> str | None:
    """Where a stored output is downloaded (`GET /outputs/{location}`), under the API's
    public address `base`; None without either."""
    return f"{base}/outputs/{location}" if base and location else None


def submitted(event: Any) -> dict[str, Any]:
    """The document of a job just submitted."""
    at = iso(event.timestamp)
    return {
        "job_id": str(event.originator_id),
        "status": QUEUED,
        "progress": 0,
        "stage": None,
        "output_location": None,
        "poster_location": None,
        "duration_seconds": None,
        "file_size_bytes": None,
        "estimated_credits": event.estimated_credits,
        "credits_used": None,
        "error": None,
        "webhook_uri": event.webhook_uri,
        "sandbox": bool(getattr(event, "sandbox", False)),
        # Exports (domain/exports.py): one entry per target, as submitted; absent from
        # jobs recorded before exports.
        "exports": [export_entry(target) for target in getattr(event, "exports", None) or []],
        "output_deleted_at": None,
        "created_at": at,
        "started_at": None,
        "completed_at": None,
        "updated_at": at,
    }


def changes(event: Any) -> dict[str, Any] | None:
    """The fields of the document one job event sets (all of them for a submission)."""
    if isinstance(event, RenderJob.Submitted):
        return submitted(event)
    at = iso(event.timestamp)
    if isinstance(event, RenderJob.Started):
        return {
            "status": PROCESSING,
            "progress": 0,
            "stage": "starting",
            "started_at": at,
            "updated_at": at,
        }
    if isinstance(event, RenderJob.ProgressReported):
        return {"progress": event.progress, "stage": event.stage, "updated_at": at}
    if isinstance(event, RenderJob.Completed):
        return {
            "status": COMPLETED,
            "progress": 1,
            "stage": "complete",
            "output_location": event.output_location,
            # Events recorded before posters existed have none.
            "poster_location": getattr(event, "poster_location", None),
            "duration_seconds": event.duration_seconds,
            "file_size_bytes": event.file_size_bytes,
            "credits_used": event.credits_used,
            "completed_at": at,
            "updated_at": at,
        }
    if isinstance(event, RenderJob.Failed):
        return {
            "status": FAILED,
            "stage": "failed",
            "credits_used": 0,
            "error": {"code": event.code, "message": event.message},
            "updated_at": at,
        }
    if isinstance(event, RenderJob.Cancelled):
        return {
            "status": CANCELLED,
            "stage": "cancelled",
            "credits_used": event.credits_used,
            "error": {"code": "CANCELLED", "message": event.reason},
            "updated_at": at,
        }
    return None


def apply(doc: dict[str, Any], event: Any) -> bool:
    """Apply one event to a document; whether it changed anything."""
    if isinstance(event, EXPORT_EVENTS):
        apply_export(doc, event)
        return True
    change = changes(event)
    if change is None:
        return False
    doc.update(change)
    if isinstance(event, RenderJob.Failed | RenderJob.Cancelled):
        # A job that did not complete runs none of its exports.
        for entry in doc.get("exports", ()):
            entry.update(
                status="skipped",
                error={"code": "NOT_RENDERED", "message": f"the job {doc['status']}"},
            )
    return True


# Events that change a job's exports (or end them, with its output), never its status:
# `updated_at` keeps the job's own last change (a webhook's `timestamp` is its ending).
EXPORT_EVENTS = (
    RenderJob.ExportStarted,
    RenderJob.ExportSucceeded,
    RenderJob.ExportFailed,
    RenderJob.ExportSkipped,
    RenderJob.OutputDeleted,
)


def export_entry(target: dict[str, Any]) -> dict[str, Any]:
    """One export as a job's page shows it, before anything ran."""
    return {
        "type": target["type"],
        "integration_id": target["integration_id"],
        "status": "pending",
        "location": None,
        "attempts": 0,
        "error": None,
        "next_attempt_at": None,
    }


def apply_export(doc: dict[str, Any], event: Any) -> None:
    """An export event, or the output's deletion, on a job's document."""
    if isinstance(event, RenderJob.OutputDeleted):
        doc["output_deleted_at"] = iso(event.timestamp)
        for index in event.abandoned_exports:
            doc["exports"][index].update(
                status="failed",
                next_attempt_at=None,
                error={
                    "code": "OUTPUT_DELETED",
                    "message": "the job's output was deleted before this export finished",
                },
            )
        return
    entry = doc["exports"][event.index]
    if isinstance(event, RenderJob.ExportStarted):
        entry.update(status="running", attempts=event.attempt, next_attempt_at=None)
    elif isinstance(event, RenderJob.ExportSucceeded):
        entry.update(status="succeeded", location=event.location, error=None)
    elif isinstance(event, RenderJob.ExportFailed):
        entry.update(
            status="failed" if event.final else "pending",
            error={"code": event.code, "message": event.message},
            next_attempt_at=iso(event.next_attempt_at) if event.next_attempt_at else None,
        )
    elif isinstance(event, RenderJob.ExportSkipped):
        entry.update(status="skipped", error={"code": event.code, "message": event.message})


def document(events: Iterable[Any]) -> dict[str, Any] | None:
    """A job's document from its events, in order (None without its submission)."""
    doc: dict[str, Any] | None = None
    for event in events:
        if isinstance(event, RenderJob.Submitted):
            doc = submitted(event)
        elif doc is not None:
            apply(doc, event)
    return doc


def public_view(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """The job as `GET /api/jobs/{id}` shows it: URLs in place of storage locations."""
    hidden = ("output_location", "poster_location")
    view = {key: value for key, value in doc.items() if key not in hidden}
    view["output_uri"] = output_url(base, doc.get("output_location"))
    view["poster_uri"] = output_url(base, doc.get("poster_location"))
    # Rows built before exports lack these: every job shows them.
    view.setdefault("exports", [])
    view.setdefault("output_deleted_at", None)
    return view


def webhook_body(doc: dict[str, Any], public_url: str | None) -> dict[str, Any]:
    """The body of an ended job's webhook. `output_uri` needs the API's public address
    (`PHANTOMFLOW_PUBLIC_URL`); without it the body says null and the receiver can GET
    the job."""
    return {
        "job_id": doc["job_id"],
        "status": doc["status"],
        "output_uri": output_url(public_url, doc["output_location"]),
        "credits_used": doc["credits_used"],
        "duration_seconds": doc["duration_seconds"],
        "error": doc["error"],
        # Every export settled: a job with exports sends its webhook only then.
        "exports": doc.get("exports", []),
        # The ending's time: exports change only their own entries after it.
        "timestamp": doc["updated_at"],
    }


def attempt_view(event: Any) -> dict[str, Any]:
    """One `WebhookAttempted` event as the delivery log shows it."""
    next_at = event.next_attempt_at
    return {
        "attempt": event.attempt,
        "trigger": event.trigger,
        "url": event.url,
        "status_code": event.status_code,
        "error": event.error,
        "duration_ms": event.duration_ms,
        "delivered": event.delivered,
        "response_excerpt": event.response_excerpt,
        "attempted_at": iso(event.timestamp),
        "next_attempt_at": iso(next_at) if next_at else None,
    }


def history_entry(event: Any) -> dict[str, Any]:
    """A stored event as plain JSON-ready data: the audit view of a job's history."""
    meta = ("originator_id", "originator_version", "timestamp")
    data = {key: _plain(value) for key, value in vars(event).items() if key not in meta}
    return {
        "type": type(event).__name__,
        "at": iso(event.timestamp),
        "version": event.originator_version,
        "data": data,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
