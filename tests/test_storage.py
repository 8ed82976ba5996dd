"""Output storage: finished renders put in place whole, moved when they can be."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

import pytest

from phantomflow.adapters.storage import OutputStorage


def test_a_render_is_moved_into_place_and_a_shared_file_is_copied(tmp_path: Path):
    storage = OutputStorage(tmp_path / "outputs")
    job_id = uuid.uuid4()
    rendered = tmp_path / "output.mp4"
    rendered.write_bytes(b"movie")
    sample = tmp_path / "sample.mp4"
    sample.write_bytes(b"sample")

    location = storage.store(job_id, rendered, move=True)
    assert not rendered.exists()
    assert storage.path_of(location).read_bytes() == b"movie"

    copied = storage.store(uuid.uuid4(), sample)
    assert sample.read_bytes() == b"sample"
    assert storage.path_of(copied).read_bytes() == b"sample"
    assert sorted(path.name for path in storage.root.iterdir()) == sorted([location, copied])


def test_across_filesystems_a_move_becomes_a_copy(tmp_path: Path, monkeypatch):
    storage = OutputStorage(tmp_path / "outputs")
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
    job_id = uuid.uuid4()
    location = storage.store_poster(job_id, poster, move=True)

    assert location == f"{job_id}.jpg"
    assert storage.path_of(location).read_bytes() == b"jpeg"
    # Copied beside its final name first, then renamed: never seen half-written.
    assert calls[-1] == (storage.root / f"{location}.part", storage.root / location)
    assert not (storage.root / f"{location}.part").exists()


def test_other_failures_to_move_are_not_hidden(tmp_path: Path):
    storage = OutputStorage(tmp_path / "outputs")
    with pytest.raises(FileNotFoundError):
        storage.store(uuid.uuid4(), tmp_path / "missing.mp4", move=True)
