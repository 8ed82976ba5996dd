"""Typed results: one dataclass per shape the API answers.

Each is built from the JSON by `Model.from_dict`, which reads the field types from the
class itself (ISO 8601 strings become aware `datetime`s, nested objects their dataclass).
Fields the client does not know yet (a newer server) are kept, with everything else, in
`raw`, so nothing the server sends is lost.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeVar, Union

M = TypeVar("M", bound="Model")

JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Model:
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    _hints: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        hints = Model._hints.get(cls)
        if hints is None:
            hints = typing.get_type_hints(cls)
            Model._hints[cls] = hints
        values = {}
        for field in dataclasses.fields(cls):
            if field.name == "raw" or field.name not in data:
                continue
            values[field.name] = _convert(hints[field.name], data[field.name])
        return cls(raw=data, **values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the server sent."""
        return dict(self.raw)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, element) for element in value]
    if isinstance(hint, type) and issubclass(hint, Model) and isinstance(value, dict):
        return hint.from_dict(value)
    if hint is datetime and isinstance(value, str):
        return parse_instant(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- renders and jobs -------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Submission(Model):
    """The 202 answer to a render: the job is queued and its credits are charged."""

    job_id: str
    status: str
    estimated_credits: int
    credits_remaining: int
    replayed: bool = False  # the answer to an earlier request with the same Idempotency-Key


@dataclasses.dataclass(frozen=True, kw_only=True)
class Quote(Model):
    """A dry run's answer: the script is valid, and what its render would cost and leave.
    Nothing is recorded or charged."""

    valid: bool
    estimated_credits: int
    credits_remaining: int
    duration_seconds: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobError(Model):
    code: str
    message: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobExport(Model):
    """One export target of a job and where it stands (docs/api.md, "Exports")."""

    type: str
    integration_id: str
    status: str  # pending, running, succeeded, failed or skipped
    location: str | None = None
    attempts: int = 0
    error: JobError | None = None
    next_attempt_at: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job(Model):
    job_id: str
    status: str
    progress: float = 0.0
    stage: str | None = None
    output_uri: str | None = None
    poster_uri: str | None = None
    duration_seconds: float | None = None
    file_size_bytes: int | None = None
    estimated_credits: int = 0
    credits_used: int | None = None
    error: JobError | None = None
    webhook_uri: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    exports: list[JobExport] = dataclasses.field(default_factory=list)
    output_deleted_at: datetime | None = None
    sandbox: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobPage(Model):
    jobs: list[Job]
    total: int
    page: int
    limit: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredEvent(Model):
    """One event of a job's history, as stored (`GET /api/jobs/{id}/events`)."""

    type: str
    at: datetime
    version: int
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobHistory(Model):
    job_id: str
    events: list[StoredEvent]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeletedOutput(Model):
    """`DELETE /api/jobs/{id}/output`: the job's files are gone; the job stays."""

    job_id: str
    deleted: bool
    output_deleted_at: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cancellation(Model):
    job_id: str
    status: str
    credits_used: int | None = None
    credits_refunded: int = 0


# --- live progress (SSE) ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProgressEvent(Model):
    """`progress`: how far the render is, and in which stage."""

    name: ClassVar[str] = "progress"
    final: ClassVar[bool] = False
    id: int
    progress: float
    stage: str
    timestamp: datetime | None = None
    job_id: str | None = None  # on the account stream only


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompleteEvent(Model):
    """`complete`: the video is ready."""

    name: ClassVar[str] = "complete"
    final: ClassVar[bool] = True
    id: int
    output_uri: str
    credits_used: int
    duration_seconds: float
    file_size_bytes: int | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    timestamp: datetime | None = None
    job_id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ErrorEvent(Model):
    """`error`: the job failed, or was cancelled (code `CANCELLED`)."""

    name: ClassVar[str] = "error"
    final: ClassVar[bool] = True
    id: int
    code: str
    message: str
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    timestamp: datetime | None = None
    job_id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportEvent(Model):
    """`export` (a job with exports): one export changed; `index` is its place in the
    job's `exports`. `settled` (the stream's `final`): it will change no more."""

    name: ClassVar[str] = "export"
    final: ClassVar[bool] = False
    id: int
    index: int
    status: str
    attempt: int | None = None
    location: str | None = None
    bytes: int | None = None
    duration_ms: int | None = None
    error: dict[str, Any] | None = None
    settled: bool = False
    next_attempt_at: datetime | None = None
    timestamp: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoryboardFrame(Model):
    """One picture of a preview's storyboard: a scene at its middle, or a transition."""

    scene: int
    kind: str  # scene or transition
    time: float
    image_uri: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoryboardEvent(Model):
    """`storyboard` (a preview's stream): its frames are drawn, before the proxy."""

    name: ClassVar[str] = "storyboard"
    final: ClassVar[bool] = False
    id: int
    storyboard: list[StoryboardFrame]
    timestamp: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PreviewCompleteEvent(Model):
    """`complete` (a preview's stream): the proxy is drawn."""

    name: ClassVar[str] = "complete"
    final: ClassVar[bool] = True
    id: int
    proxy_uri: str
    viewer_url: str
    duration_seconds: float
    width: int
    height: int
    fps: float
    file_size_bytes: int | None = None
    timestamp: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebhookEvent(Model):
    """`webhook` (account stream only): one attempt to deliver a job's webhook."""

    name: ClassVar[str] = "webhook"
    final: ClassVar[bool] = False
    id: int
    job_id: str
    attempt: int
    trigger: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    delivered: bool = False
    timestamp: datetime | None = None


JobEvent = ProgressEvent | CompleteEvent | ErrorEvent | ExportEvent
AccountEvent = ProgressEvent | CompleteEvent | ErrorEvent | WebhookEvent
PreviewEvent = ProgressEvent | StoryboardEvent | PreviewCompleteEvent | ErrorEvent
Event = AccountEvent | ExportEvent | StoryboardEvent | PreviewCompleteEvent


def _by_name(*kinds: type[Model]) -> dict[str, type[Model]]:
    return {kind.name: kind for kind in kinds}  # type: ignore[attr-defined]


# Each stream's events by name (a preview's `complete` is not a job's).
JOB_EVENTS = _by_name(ProgressEvent, CompleteEvent, ErrorEvent, ExportEvent, WebhookEvent)
PREVIEW_EVENTS = _by_name(ProgressEvent, StoryboardEvent, PreviewCompleteEvent, ErrorEvent)
# The event stream's data is camelCase (the contract's); the models are snake_case.
_EVENT_FIELDS = {
    "proxyUri": "proxy_uri",
    "viewerUrl": "viewer_url",
    "imageUri": "image_uri",
    "nextAttemptAt": "next_attempt_at",
    "final": "settled",
    "outputUri": "output_uri",
    "creditsUsed": "credits_used",
    "durationSeconds": "duration_seconds",
    "fileSizeBytes": "file_size_bytes",
    "jobId": "job_id",
    "statusCode": "status_code",
    "durationMs": "duration_ms",
}


def _snake(value: Any) -> Any:
    """A list of objects (a storyboard) with its objects' fields renamed; anything else
    as it is (metadata is the caller's own, never renamed)."""
    if isinstance(value, list):
        return [
            {_EVENT_FIELDS.get(key, key): v for key, v in item.items()}
            if isinstance(item, dict)
            else item
            for item in value
        ]
    return value


def event_from_sse(
    name: str, event_id: int, data: dict[str, Any], kinds: dict[str, type[Model]] = JOB_EVENTS
) -> Event | None:
    """The typed event of one SSE message; None for an event name this client does not know."""
    kind = kinds.get(name)
    if kind is None:
        return None
    fields = {_EVENT_FIELDS.get(key, key): _snake(value) for key, value in data.items()}
    event = kind.from_dict({**fields, "id": event_id})
    return typing.cast(Event, dataclasses.replace(event, raw=data))


# --- templates ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class TemplateSummary(Model):
    """A template as listed, created or changed: everything but its script."""

    id: str
    name: str
    is_public: bool = False
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Template(TemplateSummary):
    script: dict[str, Any] = dataclasses.field(default_factory=dict)
    variables: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TemplateVersion(Model):
    version: int
    name: str
    is_public: bool
    changed: list[str]
    created_at: datetime | None = None


# --- keys, credits, webhooks ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ApiKey(Model):
    id: str
    prefix: str
    mode: str
    revoked: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class NewApiKey(Model):
    """A key just minted: `api_key` is its secret, shown this once."""

    id: str
    api_key: str
    prefix: str
    mode: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class RevokedKey(Model):
    id: str
    revoked: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits(Model):
    requests_per_minute: int
    concurrent_jobs: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyIdentity(Model):
    prefix: str
    mode: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Account(Model):
    """Who the key belongs to: the account, its plan and limits, and the key itself."""

    account_id: str
    plan: str
    limits: Limits
    active_jobs: int
    credits: int
    key: KeyIdentity


@dataclasses.dataclass(frozen=True, kw_only=True)
class Balance(Model):
    credits: int
    currency: str = "credits"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BalanceAt(Model):
    at: str
    credits: int
    currency: str = "credits"
    account_version: int | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class LedgerEntry(Model):
    seq: int
    at: datetime
    type: str
    amount: int
    balance_after: int
    job_id: str | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class LedgerPage(Model):
    entries: list[LedgerEntry]
    totals: dict[str, int]
    total: int
    page: int
    limit: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebhookAttempt(Model):
    attempt: int
    trigger: str
    url: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    delivered: bool = False
    response_excerpt: str | None = None
    attempted_at: datetime | None = None
    next_attempt_at: datetime | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebhookLog(Model):
    """A job's webhook and every attempt to deliver it."""

    job_id: str
    webhook_uri: str | None
    webhook_id: str
    status: str
    attempts: list[WebhookAttempt]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Redelivery(Model):
    job_id: str
    redelivery: int
    status: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebhookSecret(Model):
    secret: str
    previous_secret_expires_at: datetime | None = None


# --- integrations ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class IntegrationSecret(Model):
    """What is shown of a sealed secret: that it is set, and (12 characters or more) its
    last 4."""

    set: bool
    last4: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Integration(Model):
    """Stored credentials of an export destination (docs/api.md, "Integrations")."""

    id: str
    type: str  # s3, ftp, sftp, email or youtube
    name: str
    settings: dict[str, Any]
    secrets: dict[str, Any]  # name -> {"set": true, "last4": ...}
    created_at: datetime | None = None

    def secret(self, name: str) -> IntegrationSecret:
        return IntegrationSecret.from_dict(self.secrets[name])


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeletedIntegration(Model):
    id: str
    deleted: bool


# --- previews -------------------------------------------------------------------------

PREVIEW_FINAL_STATUSES = frozenset({"completed", "failed", "expired"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class PreviewProxy(Model):
    duration_seconds: float
    width: int
    height: int
    fps: float
    file_size_bytes: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class Preview(Model):
    """A free look at a script: its storyboard, then a watermarked proxy video, and a
    page anyone with `viewer_url` can watch them on (docs/api.md, "Previews")."""

    preview_id: str
    status: str  # queued, processing, completed, failed or expired
    progress: float = 0.0
    stage: str | None = None
    storyboard: list[StoryboardFrame] = dataclasses.field(default_factory=list)
    proxy_uri: str | None = None
    proxy: PreviewProxy | None = None
    viewer_url: str = ""
    duration_seconds: float = 0.0
    estimated_credits: int = 0
    error: JobError | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    sandbox: bool = False
    origin: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in PREVIEW_FINAL_STATUSES


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeletedPreview(Model):
    preview_id: str
    deleted: bool


# --- assets ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Asset(Model):
    """An uploaded file of your media library, named in scripts by its id (`"src":
    "asset_..."`, `"font_family": "asset_..."`). `url` is its file, read with your key."""

    id: str
    name: str
    type: str  # image, video, audio or font
    mime_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    created_at: datetime | None = None
    url: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class StorageUse(Model):
    used_bytes: int
    limit_bytes: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class AssetPage(Model):
    assets: list[Asset]
    total: int
    page: int
    limit: int
    storage: StorageUse


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeletedAsset(Model):
    id: str
    deleted: bool
