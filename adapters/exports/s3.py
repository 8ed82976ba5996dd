"""S3 exports: the render uploaded to the user's own bucket with their own keys.

Integration settings: `bucket`, `region`, `access_key_id`, and `endpoint_url` for
S3-compatible stores other than AWS (its host must pass the address policy); secret:
`secret_access_key`. Target: `prefix` (a key prefix) and `filename`. Multipart, from the
file on disk, a few 8 MiB parts at a time (the same transfer settings as storage).
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from phantomflow.adapters.exports import (
    AUTH_FAILED,
    CONNECTION_FAILED,
    REMOTE_REJECTED,
    TIMEOUT,
    UPLOAD_FAILED,
    ExportError,
    ExportRequest,
)
from phantomflow.adapters.exports.hosts import checked_address
from phantomflow.adapters.storage.s3 import CONCURRENCY, PART_BYTES
from phantomflow.domain.exports import ExportOutcome

TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES,
    multipart_chunksize=PART_BYTES,
    max_concurrency=CONCURRENCY,
    max_io_queue=CONCURRENCY * 2,
)
# Codes that trying again cannot fix: the keys, the bucket or the permissions are wrong.
PERMANENT_AUTH = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
PERMANENT_OTHER = {"NoSuchBucket", "InvalidBucketName", "AllAccessDisabled", "404"}


def object_key(prefix: str | None, filename: str) -> str:
    prefix = (prefix or "").strip("/")
    return f"{prefix}/{filename}" if prefix else filename


# One session for every export's client: a new session loads botocore's S3 model again
# (0.06-0.14 s on the bench's machine, a tenth of a 200 MB export on loopback); a client
# made from this one takes 0.02-0.04 s. It holds no credentials: each client is given the
# integration's own. Made at first use, not at import (it reads the AWS config files).
_SESSION: list[boto3.session.Session] = []
_SESSION_LOCK = threading.Lock()


def client_for(request: ExportRequest) -> Any:
    settings = request.settings
    endpoint = settings.get("endpoint_url")
    if endpoint:
        parts = urlsplit(endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        checked_address(parts.hostname or "", port, request.options.allow_private)
    with _SESSION_LOCK:  # a session is not safe to share between threads
        if not _SESSION:
            _SESSION.append(boto3.session.Session())
        return _SESSION[0].client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=settings.get("region") or "us-east-1",
            aws_access_key_id=settings["access_key_id"],
            aws_secret_access_key=request.secrets["secret_access_key"],
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=request.options.timeout,
                read_timeout=request.options.timeout,
                max_pool_connections=CONCURRENCY * 2,
            ),
        )


def deliver(request: ExportRequest) -> ExportOutcome:
    bucket = request.settings["bucket"]
    key = object_key(request.target.get("prefix"), request.filename)
    client = client_for(request)
    try:
        client.upload_file(
            str(request.file),
            bucket,
            key,
            ExtraArgs={"ContentType": "video/mp4"},
            Config=TRANSFER,
        )
    except (ConnectTimeoutError, ReadTimeoutError) as error:
        raise ExportError(TIMEOUT, str(error)) from None
    except EndpointConnectionError as error:
        raise ExportError(CONNECTION_FAILED, str(error)) from None
    except ClientError as error:
        raise _client_error(error, bucket) from None
    except BotoCoreError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, ClientError):
            raise _client_error(cause, bucket) from None
        raise ExportError(UPLOAD_FAILED, str(error)) from None
    except Exception as error:
        # boto3 wraps upload errors in S3UploadFailedError, whose cause is the reason.
        cause = error.__cause__ or error.__context__
        if isinstance(cause, ClientError):
            raise _client_error(cause, bucket) from None
        raise ExportError(UPLOAD_FAILED, f"{type(error).__name__}: {error}") from None
    finally:
        client.close()
    return ExportOutcome(location=f"s3://{bucket}/{key}", bytes=request.size)


def _client_error(error: ClientError, bucket: str) -> ExportError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = f"S3 answered {code}: {details.get('Message') or error}"
    if code in PERMANENT_AUTH:
        return ExportError(AUTH_FAILED, message, permanent=True)
    if code in PERMANENT_OTHER:
        return ExportError(REMOTE_REJECTED, f"{message} (bucket {bucket})", permanent=True)
    return ExportError(UPLOAD_FAILED, message)
