"""The sample video a sandbox job completes with (2 s, 320x240, H.264)."""

from __future__ import annotations

from pathlib import Path

SANDBOX_SAMPLE = Path(__file__).resolve().parent / "sandbox.mp4"
# Known, not measured: sandbox jobs never run FFmpeg. A test checks it with ffprobe.
SANDBOX_SAMPLE_SECONDS = 2.0
