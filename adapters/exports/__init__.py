"""Export targets: one module per protocol, each delivering one finished render.

`deliver(target_type, request)` hands a local file to the target's module, which
returns where the file landed or raises `ExportError` with a code, a message and
whether trying again later can help (`permanent`). Every module checks its host
against the address policy of client URLs (`hosts.py`) before connecting, and bounds
its memory: files are streamed from disk in parts, never read whole (an email
attachment, capped in size, is the one exception).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from phantomflow.domain.exports import ExportOutcome

# Error codes of failed attempts (docs/api.md lists them).
ADDRESS_REFUSED = "ADDRESS_REFUSED"
AUTH_FAILED = "AUTH_FAILED"
CONNECTION_FAILED = "CONNECTION_FAILED"
HOST_KEY_MISMATCH = "HOST_KEY_MISMATCH"
REMOTE_REJECTED = "REMOTE_REJECTED"
TIMEOUT = "TIMEOUT"
UPLOAD_FAILED = "UPLOAD_FAILED"
NO_PUBLIC_URL = "NO_PUBLIC_URL"

TIMEOUT_SECONDS = 60.0
# Mail servers commonly refuse messages over 10–25 MB, and base64 adds a third.
EMAIL_ATTACH_MAX_BYTES = 10 * 1024 * 1024
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
YOUTUBE_UPLOAD_URL = "https://www.googleapis.com/upload/youtube/v3/videos"


class ExportError(Exception):
    def __init__(self, code: str, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class ExportOptions:
    """What the deployment decides, not the user: the address policy, time limits,
    the email attachment cap, and Google's endpoints (tests point them at a local
    server that follows the same protocol)."""

    allow_private: bool = False
    timeout: float = TIMEOUT_SECONDS
    email_attach_max_bytes: int = EMAIL_ATTACH_MAX_BYTES
    google_token_url: str = GOOGLE_TOKEN_URL
    youtube_upload_url: str = YOUTUBE_UPLOAD_URL


@dataclass(frozen=True)
class ExportRequest:
    """One export of one render: the file, the target's fields, and the integration's
    settings and opened secrets."""

    job_id: UUID
    file: Path
    filename: str
    target: dict[str, Any]
    settings: dict[str, Any]
    secrets: dict[str, str]
    options: ExportOptions = field(default_factory=ExportOptions)
    poster: Path | None = None
    output_uri: str | None = None
    poster_uri: str | None = None

    @property
    def size(self) -> int:
        return self.file.stat().st_size


Deliver = Callable[[ExportRequest], ExportOutcome]


def filename_for(template: str | None, job_id: UUID) -> str:
    """The exported file's name: the target's template with `{job_id}` filled in."""
    return (template or "{job_id}.mp4").replace("{job_id}", str(job_id))


def deliver(target_type: str, request: ExportRequest) -> ExportOutcome:
    """Deliver one export; never raises for what the remote side or the network did."""
    from phantomflow.adapters.exports import email, ftp, s3, sftp, youtube

    targets: dict[str, Deliver] = {
        "s3": s3.deliver,
        "ftp": ftp.deliver,
        "sftp": sftp.deliver,
        "email": email.deliver,
        "youtube": youtube.deliver,
    }
    try:
        return targets[target_type](request)
    except ExportError as error:
        return ExportOutcome(code=error.code, message=error.message, permanent=error.permanent)
    except TimeoutError as error:
        return ExportOutcome(code=TIMEOUT, message=f"timed out: {error}")
    except OSError as error:
        return ExportOutcome(code=CONNECTION_FAILED, message=f"{type(error).__name__}: {error}")
