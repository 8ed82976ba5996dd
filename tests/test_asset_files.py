"""Uploaded assets' files on disk: the spools an upload leaves when its process dies."""

from __future__ import annotations

import os
import time

from phantomflow.adapters.asset_files import SPOOL_IDLE_SECONDS, sweep_spools


def test_only_spools_left_idle_past_the_limit_are_swept(tmp_path):
    abandoned, live, other = (tmp_path / n for n in ("upload-a", "upload-b", "kept.mp4"))
    for path in (abandoned, live, other):
        path.write_bytes(b"x")
    now = time.time()
    os.utime(abandoned, (now - SPOOL_IDLE_SECONDS - 5,) * 2)
    os.utime(other, (now - SPOOL_IDLE_SECONDS - 5,) * 2)

    assert sweep_spools(tmp_path, now) == 1

    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.mp4", "upload-b"]
    assert sweep_spools(tmp_path / "missing", now) == 0
