"""Every benchmark under bench/ still runs: each one in its smoke mode (tiny sizes, a
few seconds), as a subprocess, must exit 0 and print its figures.

The figures of a smoke run mean nothing and are not judged here; what is checked is
that each benchmark gets through every phase and reports what it measures, so a
change to the code it drives cannot leave it broken unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL, postgres_available, service_missing

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SHARED_MODULES = {"harness.py"}

# A figure every smoke run must report as a number, per benchmark.
FIGURES: dict[str, tuple[str, ...]] = {
    "submit.py": (
        "http_submissions_per_s",
        "http_p99_ms",
        "http_floor_per_s",
        "api_cpu_ms_per_submission",
        "inprocess_submissions_per_s",
    ),
    "submit_cpu.py": (
        "empty_total_cpu_ms",
        "empty_insert_cpu_ms",
        "queued_total_cpu_ms",
        "queued_account_read_cpu_ms",
        "cpu_ratio_queued_to_empty",
    ),
    "job_reads.py": (
        "queued_read_per_s",
        "completed_read_per_s",
        "floor_per_s",
        "queued_read_to_floor",
    ),
    "sse.py": ("latency_p99_ms", "memory_per_stream_kib", "projected_rss_10k_streams_mib"),
    "template_render.py": (
        "plain_per_s",
        "template_per_s",
        "template_to_plain_ratio",
        "validate_us",
        "substitute_us",
        "template_read_us",
    ),
    "audit.py": (
        "cold_load_with_snapshots_ms",
        "cold_load_without_snapshots_ms",
        "cached_load_ms",
    ),
    "read_models.py": ("events_in_store", "rebuild_seconds", "events_per_second"),
    "flood.py": ("quiet_p99_ms", "flood_p99_ms", "flood_to_quiet_p99", "flood_bodies_refused"),
    "cli_render.py": (
        "total_median_s",
        "complete_to_exit_median_s",
        "complete_to_exit_max_s",
    ),
    "exports.py": (
        "s3_export_ratio",
        "sftp_export_ratio",
        "s3_rss_growth_mb",
        "sftp_rss_growth_mb",
        "file_serve_ratio",
        "s3_redirect_ratio",
        "s3_proxy_ratio",
    ),
    "media_cache.py": (
        "bytes_without_cache",
        "bytes_with_cache",
        "bytes_ratio",
        "wall_without_cache_s",
        "wall_with_cache_s",
        "wall_ratio",
    ),
    "preview.py": (
        "storyboard_seconds_10s_1080p",
        "proxy_seconds_10s_1080p",
        "render_seconds_10s_1080p",
        "proxy_to_render_10s_1080p",
        "storyboard_seconds_30s_720p",
        "proxy_seconds_30s_720p",
        "render_seconds_30s_720p",
        "proxy_to_render_30s_720p",
    ),
    "render.py": (
        "system_seconds",
        "bare_seconds",
        "ratio",
        "dispatch_seconds",
        "download_and_probe_seconds",
        "ffmpeg_run_seconds",
        "after_ffmpeg_seconds",
    ),
}
# What each needs besides Python: PostgreSQL, and Redis for the API process.
NEEDS_REDIS = {"submit.py", "job_reads.py", "sse.py", "template_render.py", "flood.py"}
# The embedded system, or no service at all.
EMBEDDED = {"render.py", "cli_render.py", "exports.py", "preview.py", "media_cache.py"}


def run_smoke(name: str, redis_url: str | None) -> dict[str, Any]:
    env = dict(os.environ, BENCH_DATABASE_URL=POSTGRES_URL)
    if redis_url:
        env["BENCH_REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, str(BENCH / name), "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 1, f"no report before the figures:\n{done.stdout}"
    assert "smoke run" in done.stdout
    figures = json.loads(lines[-1])
    assert figures["smoke"] is True
    return figures


def test_every_benchmark_has_a_smoke_run_here():
    benchmarks = {path.name for path in BENCH.glob("*.py")} - SHARED_MODULES
    assert benchmarks == set(FIGURES)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.ffmpeg] if name in EMBEDDED else [])
        for name in sorted(FIGURES)
    ],
)
def test_benchmark_runs_in_smoke_mode_and_prints_its_figures(
    name: str, request: pytest.FixtureRequest
):
    if name not in EMBEDDED and not postgres_available():
        service_missing(f"PostgreSQL at {POSTGRES_URL}")
    redis_url = request.getfixturevalue("redis_url") if name in NEEDS_REDIS else None
    figures = run_smoke(name, redis_url)
    missing = [key for key in FIGURES[name] if not isinstance(figures.get(key), int | float)]
    assert not missing, f"figures missing from {name}: {missing}\n{figures}"
    CHECKS.get(name, lambda _figures: None)(figures)


def _submit(figures: dict[str, Any]) -> None:
    # Every submission the client counted is in the event store, and nothing failed.
    # (wrk stops at a time and does not count answers still on their way then.)
    assert figures["http_non_202"] == 0
    accepted, recorded = figures["http_submissions_accepted"], figures["http_submissions_recorded"]
    assert accepted > 0
    if figures["client"] == "wrk":
        assert accepted <= recorded <= accepted + figures["concurrency"]
    else:
        assert recorded == accepted
    assert figures["inprocess_failures"] == 0
    # pgbench's phase runs wherever pgbench is installed; without it, it is left out.
    if figures["pgbench_tps"] is not None:
        assert figures["http_to_pgbench_ratio"] > 0


def _sse(figures: dict[str, Any]) -> None:
    assert figures["received"] == figures["events"]
    assert figures["stream_errors"] == 0


def _media_cache(figures: dict[str, Any]) -> None:
    # However small the run, the shared video is downloaded once with the cache.
    assert figures["downloads_with_cache"] == 1
    assert figures["downloads_without_cache"] == figures["jobs"]
    assert figures["cache_hits"] == figures["jobs"] - 1


def _read_models(figures: dict[str, Any]) -> None:
    handled = [model["events"] for model in figures["read_models"].values()]
    assert max(handled) > 0


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "submit.py": _submit,
    "sse.py": _sse,
    "read_models.py": _read_models,
    "media_cache.py": _media_cache,
}
