"""Output storage, on both backends: a local folder and a real S3 server (moto's)."""

from __future__ import annotations

import errno
import io
import os
import uuid
from pathlib import Path

import pytest

from phantomflow.adapters.storage import Storage, is_valid_key, storage_for
from phantomflow.adapters.storage.files import FileStorage
from phantomflow.adapters.storage.s3 import PART_BYTES, S3Storage
from tests.servers.s3 import S3Bucket


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "file":
        return FileStorage(tmp_path / "outputs")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return S3Storage(bucket.name, prefix="renders", client=bucket.client())


def test_a_render_is_moved_into_place_and_a_shared_file_is_copied(storage: Storage, tmp_path: Path):
    rendered = tmp_path / "output.mp4"
    rendered.write_bytes(b"movie")
    sample = tmp_path / "sample.mp4"
    sample.write_bytes(b"sample")

    moved = storage.put_file(f"{uuid.uuid4()}.mp4", rendered, move=True)
    copied = storage.put_file(f"{uuid.uuid4()}.mp4", sample)

    assert not rendered.exists()
    assert sample.read_bytes() == b"sample"
    assert b"".join(storage.read(moved.key)) == b"movie"
    assert b"".join(storage.read(copied.key)) == b"sample"
    assert (moved.size, moved.content_type) == (5, "video/mp4")


def test_stat_describes_an_object_and_answers_none_for_a_missing_or_foreign_key(
    storage: Storage, tmp_path: Path
):
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(b"\xff\xd8jpeg")
    stored = storage.put_file("job.jpg", poster)

    found = storage.stat("job.jpg")
    assert found is not None
    assert (found.size, found.content_type, found.etag) == (6, "image/jpeg", stored.etag)
    assert found.etag.startswith('"') and found.etag.endswith('"')
    assert found.last_modified.tzinfo is not None
    assert storage.stat("other.jpg") is None
    assert storage.stat("../outside.jpg") is None
    assert storage.stat("/etc/passwd") is None


def test_ranges_read_exactly_the_bytes_asked_for(storage: Storage, tmp_path: Path):
    source = tmp_path / "data.mp4"
    data = os.urandom(3 * 1024 * 1024 + 17)
    source.write_bytes(data)
    storage.put_file("data.mp4", source)

    assert b"".join(storage.read("data.mp4")) == data
    assert b"".join(storage.read("data.mp4", 10, 19)) == data[10:20]
    assert b"".join(storage.read("data.mp4", len(data) - 5)) == data[-5:]
    with pytest.raises(FileNotFoundError):
        b"".join(storage.read("gone.mp4"))


def test_a_stream_is_stored_without_knowing_its_length(storage: Storage):
    data = os.urandom(PART_BYTES + 1234)  # more than one multipart part on S3

    class Unsized(io.RawIOBase):
        """A stream that cannot seek or tell its size, like a request body."""

        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            return self.inner.read(min(n, 65536) if n and n > 0 else 65536)

    stored = storage.put_stream("assets/acct/upload.mp4", Unsized())
    assert stored.size == len(data)
    assert b"".join(storage.read("assets/acct/upload.mp4")) == data


def test_a_stream_that_fails_part_way_stores_nothing(storage: Storage):
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.sent > PART_BYTES:
                raise ConnectionResetError("the client went away")
            self.sent += 65536
            return b"x" * 65536

    with pytest.raises(ConnectionResetError):
        storage.put_stream("half.mp4", Broken())
    assert storage.stat("half.mp4") is None


def test_a_local_copy_has_the_objects_bytes_and_a_delete_removes_it(
    storage: Storage, tmp_path: Path
):
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video bytes")
    storage.put_file("v.mp4", source)

    with storage.local_copy("v.mp4", tmp_path / "scratch") as local:
        assert local.read_bytes() == b"video bytes"
    storage.delete("v.mp4")
    storage.delete("v.mp4")  # twice is not an error
    assert storage.stat("v.mp4") is None
    with pytest.raises(FileNotFoundError), storage.local_copy("v.mp4", tmp_path / "scratch"):
        pass
    assert not any((tmp_path / "scratch").glob("**/*.mp4"))


def test_keys_never_name_a_path_outside_the_root(storage: Storage, tmp_path: Path):
    source = tmp_path / "x.mp4"
    source.write_bytes(b"x")
    for bad in ("../x.mp4", "a/../../x.mp4", "/abs.mp4", "", ".", "a//b", "a\\b", "ok\n.mp4"):
        assert not is_valid_key(bad)
        with pytest.raises(ValueError):
            storage.put_file(bad, source)


def test_across_filesystems_a_move_becomes_a_copy(tmp_path: Path, monkeypatch):
    storage = FileStorage(tmp_path / "outputs")
    poster = tmp_path / "output.jpg"
    poster.write_bytes(b"jpeg")
    real_replace = os.replace
    calls: list[tuple[Path, Path]] = []

    def replace(source: Path, target: Path) -> None:
        calls.append((Path(source), Path(target)))
        if Path(source) == poster:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    storage.put_file("job.jpg", poster, move=True)

    assert (storage.root / "job.jpg").read_bytes() == b"jpeg"
    assert not poster.exists()
    # Copied beside its final name first, then renamed: never seen half-written.
    assert calls[-1] == (storage.root / "job.jpg.part", storage.root / "job.jpg")
    assert not (storage.root / "job.jpg.part").exists()


def test_other_failures_to_move_are_not_hidden(tmp_path: Path):
    storage = FileStorage(tmp_path / "outputs")
    with pytest.raises(FileNotFoundError):
        storage.put_file("a.mp4", tmp_path / "missing.mp4", move=True)


def test_the_storage_url_picks_the_backend(tmp_path: Path, s3_bucket: S3Bucket, monkeypatch):
    for name, value in s3_bucket.endpoint.env().items():
        monkeypatch.setenv(name, value)
    local = storage_for((tmp_path / "out").as_uri())
    assert isinstance(local, FileStorage) and local.root == (tmp_path / "out").resolve()
    remote = storage_for(f"s3://{s3_bucket.name}/some/prefix")
    assert isinstance(remote, S3Storage)
    assert (remote.bucket, remote.prefix) == (s3_bucket.name, "some/prefix")
    source = tmp_path / "a.mp4"
    source.write_bytes(b"a")
    remote.put_file("a.mp4", source)
    listed = s3_bucket.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]
    assert [item["Key"] for item in listed] == ["some/prefix/a.mp4"]
    for bad in ("ftp://x/y", "s3:///nobucket", "file://host/path"):
        with pytest.raises(ValueError):
            storage_for(bad)


def test_a_presigned_url_reads_the_object_without_credentials(s3_bucket: S3Bucket, tmp_path: Path):
    import urllib.request

    storage = S3Storage(s3_bucket.name, client=s3_bucket.client())
    source = tmp_path / "p.mp4"
    source.write_bytes(b"presigned")
    storage.put_file("p.mp4", source)
    url = storage.presigned_url("p.mp4", 60)
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"presigned"
