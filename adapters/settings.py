"""Settings, read once from the environment.

No settings at all means the embedded default: SQLite under a data directory and an
in-process worker. DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from phantomflow.adapters.media_cache import DEFAULT_MAX_BYTES as DEFAULT_MEDIA_CACHE_BYTES


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    database_schema: str | None = None
    redis_url: str | None = None
    # Prefix of every Redis key PhantomFlow writes (render queues, rate counts), so
    # several deployments (or test runs) can share one Redis. Unset: the queues keep
    # Dramatiq's own "dramatiq" and the rate counts "phantomflow".
    redis_namespace: str | None = None
    output_dir: Path | None = None
    # Where outputs are kept (adapters/storage): file:///path or s3://bucket/prefix.
    # Unset: the folder `outputs` (PHANTOMFLOW_OUTPUT_DIR or under the data directory).
    storage_url: str | None = None
    public_url: str | None = None
    # A worker that has not reported for this long is presumed dead; its job may be
    # taken over by another worker.
    render_lease_seconds: float = 300.0
    # Let client URLs (media sources, webhooks) reach loopback and private addresses:
    # for tests and self-hosting only. See adapters/addresses.py.
    allow_private_urls: bool = False
    # Media sources (`src` URLs) a render downloads: the largest file, and how long
    # all of one render's downloads may take together. See adapters/media.py.
    media_max_bytes: int = 200 * 1024 * 1024
    media_timeout_seconds: float = 60.0
    # The host's cache of downloaded media (adapters/media_cache.py): its size cap (0
    # turns it off) and folder (unset: `phantomflow-media-cache` in the temporary
    # directory, beside the renders' scratch folders, so entries can be hard-linked).
    media_cache_bytes: int = DEFAULT_MEDIA_CACHE_BYTES
    media_cache_dir: Path | None = None
    # Seconds between a failed webhook attempt and the next (workers/webhooks.py has the
    # default schedule, about a day in all). Shorter only for tests and trials.
    webhook_retry_delays: tuple[float, ...] | None = None
    # The master key that wraps each integration's data key (adapters/secrets.py).
    # Unset: the embedded default keeps one in the data directory; production refuses
    # to store integrations.
    secrets_key: str | None = None
    # Seconds between failed export attempts (domain/exports.py has the default
    # schedule, about a day in all). Shorter only for tests and trials.
    export_retry_delays: tuple[float, ...] | None = None
    email_attach_max_bytes: int = 10 * 1024 * 1024
    # Google's endpoints for YouTube exports; tests point them at a local server that
    # follows the same protocol.
    google_token_url: str = "https://oauth2.googleapis.com/token"
    youtube_upload_url: str = "https://www.googleapis.com/upload/youtube/v3/videos"
    # How GET /outputs/… answers for objects in S3: "redirect" (302 to a presigned
    # URL) or "proxy" (streamed through the API). docs/operations.md says why the
    # default is what it is.
    s3_serve: str = "redirect"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def queue_namespace(self) -> str:
        """The render and webhook queues' namespace in Redis (Dramatiq's `namespace`)."""
        return self.redis_namespace or "dramatiq"

    @property
    def rate_key_prefix(self) -> str:
        return f"{self.redis_namespace or 'phantomflow'}:rate"

    @property
    def media_cache_folder(self) -> Path:
        return self.media_cache_dir or Path(tempfile.gettempdir()) / "phantomflow-media-cache"

    @property
    def outputs(self) -> Path:
        return self.output_dir or self.data_dir / "outputs"

    @property
    def storage(self) -> str:
        """The storage URL in force: PHANTOMFLOW_STORAGE_URL, or the outputs folder."""
        return self.storage_url or self.outputs.as_uri()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        output_dir = env.get("PHANTOMFLOW_OUTPUT_DIR")
        cache_dir = env.get("PHANTOMFLOW_MEDIA_CACHE_DIR")
        return cls(
            data_dir=Path(env.get("PHANTOMFLOW_DATA_DIR", ".phantomflow")).resolve(),
            database_url=env.get("DATABASE_URL") or None,
            database_schema=env.get("PHANTOMFLOW_DB_SCHEMA") or None,
            redis_url=env.get("REDIS_URL") or None,
            redis_namespace=env.get("PHANTOMFLOW_REDIS_NAMESPACE") or None,
            output_dir=Path(output_dir).resolve() if output_dir else None,
            storage_url=env.get("PHANTOMFLOW_STORAGE_URL") or None,
            public_url=(env.get("PHANTOMFLOW_PUBLIC_URL") or "").rstrip("/") or None,
            render_lease_seconds=float(env.get("PHANTOMFLOW_RENDER_LEASE_SECONDS", "300")),
            allow_private_urls=env.get("PHANTOMFLOW_ALLOW_PRIVATE_URLS", "")
            in ("1", "true", "yes"),
            media_max_bytes=int(env.get("PHANTOMFLOW_MEDIA_MAX_BYTES", str(200 * 1024 * 1024))),
            media_timeout_seconds=float(env.get("PHANTOMFLOW_MEDIA_TIMEOUT_SECONDS", "60")),
            media_cache_bytes=int(
                env.get("PHANTOMFLOW_MEDIA_CACHE_BYTES", str(DEFAULT_MEDIA_CACHE_BYTES))
            ),
            media_cache_dir=Path(cache_dir).resolve() if cache_dir else None,
            webhook_retry_delays=_delays(env.get("PHANTOMFLOW_WEBHOOK_RETRY_DELAYS")),
            secrets_key=env.get("PHANTOMFLOW_SECRETS_KEY") or None,
            export_retry_delays=_delays(env.get("PHANTOMFLOW_EXPORT_RETRY_DELAYS")),
            email_attach_max_bytes=int(
                env.get("PHANTOMFLOW_EMAIL_ATTACH_MAX_BYTES", str(10 * 1024 * 1024))
            ),
            google_token_url=env.get("PHANTOMFLOW_GOOGLE_TOKEN_URL")
            or "https://oauth2.googleapis.com/token",
            youtube_upload_url=env.get("PHANTOMFLOW_YOUTUBE_UPLOAD_URL")
            or "https://www.googleapis.com/upload/youtube/v3/videos",
            s3_serve=_choice(env.get("PHANTOMFLOW_S3_SERVE"), ("redirect", "proxy"), "redirect"),
        )


def _delays(raw: str | None) -> tuple[float, ...] | None:
    return tuple(float(delay) for delay in raw.split(",")) if raw else None


def _choice(raw: str | None, choices: tuple[str, ...], default: str) -> str:
    if not raw:
        return default
    if raw not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
    return raw
