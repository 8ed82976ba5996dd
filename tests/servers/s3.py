"""A real S3 wire-protocol server on loopback: moto's standalone server, one per session.

Every test gets a bucket of its own, so tests never see each other's objects.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

ACCESS_KEY = "AKIATESTPHANTOMFLOW0"
SECRET_KEY = "moto-secret-key-for-tests-only-0123456789"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Endpoint:
    url: str

    def env(self) -> dict[str, str]:
        """The standard AWS variables a process needs to use this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )


@dataclass(frozen=True)
class S3Bucket:
    endpoint: S3Endpoint
    name: str

    def client(self) -> Any:
        return self.endpoint.client()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Endpoint]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield S3Endpoint(f"http://{host}:{port}")
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Endpoint) -> S3Bucket:
    name = f"pf-{uuid.uuid4().hex[:16]}"
    s3_server.client().create_bucket(Bucket=name)
    return S3Bucket(s3_server, name)
