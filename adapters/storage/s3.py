"""The S3 backend (`s3://bucket/prefix`): any S3-compatible store, through boto3.

Large files go up in multipart uploads from a file or a stream, a few parts at a time,
so a process never holds more than `PART_BYTES × CONCURRENCY` of a video in memory;
downloads (`local_copy`) are ranged GETs written to scratch. S3 makes an object visible
only when its upload completes, so readers never see half of one. Endpoint, region and
credentials come from the standard AWS environment variables, as for any boto3 client.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from phantomflow.adapters.storage import (
    Storage,
    StorageError,
    StoredObject,
    check_key,
    content_type_of,
    is_valid_key,
)

PART_BYTES = 8 * 1024 * 1024
CONCURRENCY = 4
# Read by the API proxying an object (api/outputs.py): each chunk is one hand-over to
# the thread pool, so larger chunks are fewer of them (two in flight per request).
READ_CHUNK_BYTES = 1024 * 1024
# Outputs never change once written; they disappear only when deleted.
CACHE_CONTROL = "public, max-age=3600"

TRANSFER = TransferConfig(
    multipart_threshold=PART_BYTES,
    multipart_chunksize=PART_BYTES,
    max_concurrency=CONCURRENCY,
    max_io_queue=CONCURRENCY * 2,
)


def s3_client(**overrides: Any) -> Any:
    """A boto3 S3 client from the standard environment, with bounded retries and a
    connection pool as large as the transfers' concurrency needs."""
    config = Config(
        retries={"max_attempts": 4, "mode": "standard"},
        max_pool_connections=32,
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.session.Session().client("s3", config=config, **overrides)


def _missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


@contextlib.contextmanager
def _reading(key: str, url: str) -> Iterator[None]:
    """boto3's errors of a read as ours: FileNotFoundError for a missing object,
    StorageError for anything else."""
    try:
        yield
    except ClientError as error:
        if _missing(error):
            raise FileNotFoundError(key) from None
        raise StorageError(f"cannot read {key} in {url}: {error}") from error
    except BotoCoreError as error:
        raise StorageError(f"cannot read {key} in {url}: {error}") from error


class _FullReads:
    """A stream whose `read(n)` returns n bytes until the end: boto3 takes a short read
    for the end of the stream, and network streams return what has arrived so far."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.stream.read()
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self.stream.read(wanted)
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
        return b"".join(parts)


class S3Storage(Storage):
    def __init__(self, bucket: str, prefix: str = "", client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else s3_client()
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, source: Path, *, move: bool = False) -> StoredObject:
        object_key = self._object_key(key)
        try:
            self.client.upload_file(
                str(source), self.bucket, object_key, ExtraArgs=self._extra(key), Config=TRANSFER
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"cannot store {key} in {self.url}: {error}") from error
        if move:
            source.unlink(missing_ok=True)
        return self._head(key)

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        object_key = self._object_key(key)
        try:
            # A failed multipart upload is aborted by boto3: nothing becomes visible.
            self.client.upload_fileobj(
                _FullReads(stream),
                self.bucket,
                object_key,
                ExtraArgs=self._extra(key),
                Config=TRANSFER,
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"cannot store {key} in {self.url}: {error}") from error
        return self._head(key)

    @staticmethod
    def _extra(key: str) -> dict[str, str]:
        return {"ContentType": content_type_of(key), "CacheControl": CACHE_CONTROL}

    def stat(self, key: str) -> StoredObject | None:
        if not is_valid_key(key):
            return None
        try:
            return self._head(key)
        except FileNotFoundError:
            return None

    def _head(self, key: str) -> StoredObject:
        with _reading(key, self.url):
            found = self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        return StoredObject(
            key=key,
            size=int(found["ContentLength"]),
            etag=found["ETag"],
            last_modified=found["LastModified"],
            content_type=found.get("ContentType") or content_type_of(key),
        )

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        ranged = f"bytes={start}-{'' if end is None else end}"
        with _reading(key, self.url):
            found = self.client.get_object(
                Bucket=self.bucket, Key=self._object_key(key), Range=ranged
            )
        return self._chunks(found["Body"])

    @staticmethod
    def _chunks(body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(READ_CHUNK_BYTES)
        finally:
            body.close()

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: Path) -> Iterator[Path]:
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix="s3-copy-") as folder:
            target = Path(folder) / Path(key).name
            with _reading(key, self.url):
                self.client.download_file(
                    self.bucket, self._object_key(key), str(target), Config=TRANSFER
                )
            yield target

    def delete(self, key: str) -> None:
        if not is_valid_key(key):
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"cannot delete {key} in {self.url}: {error}") from error

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._object_key(key)},
            ExpiresIn=expires_seconds,
        )
        return url

    def close(self) -> None:
        self.client.close()
