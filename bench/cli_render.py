"""How long `phantomflow render` takes to give the shell back after the job completes.

    python bench/cli_render.py [--runs 5] [--smoke]

Runs `phantomflow render` (embedded server, a tiny script) `--runs` times on a fresh data
directory, with its stderr piped: not a terminal, so it prints one line per stage. The
time from reading the `complete` line to the process's exit is what the user waits for
after the video is done: the download, the embedded system's stop and the process's
end (target: at most 0.5 s). For scale, the same figure for a bare `python -c pass`
start and exit, and for importing the CLI's modules and exiting, in the same run.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import TINY_SCRIPT, BenchError, parse_args, report, run_main


def one_render(work: Path) -> tuple[float, float]:
    """(seconds from start to exit, seconds from the complete line to exit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMFLOW_")}
    env["PHANTOMFLOW_DATA_DIR"] = str(work / "data")
    command = [sys.executable, "-m", "phantomflow.api.cli", "render", "script.json"]
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, "--out", "out.mp4"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    completed = None
    for line in process.stderr:
        if line.rstrip().endswith("complete 100%"):
            completed = time.monotonic()
    if process.wait() != 0 or completed is None:
        raise BenchError("the render failed")
    ended = time.monotonic()
    return ended - started, ended - completed


def exit_time(code: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.monotonic() - started


def run(options: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch:
        work = Path(scratch)
        (work / "script.json").write_text(json.dumps(TINY_SCRIPT))
        timings = [one_render(work) for _ in range(options.runs)]
    tails = [tail for _, tail in timings]
    return {
        "smoke": options.smoke,
        "runs": options.runs,
        "total_median_s": round(statistics.median(total for total, _ in timings), 3),
        "complete_to_exit_median_s": round(statistics.median(tails), 3),
        "complete_to_exit_max_s": round(max(tails), 3),
        "python_start_and_exit_s": round(exit_time("pass"), 3),
        "cli_imports_start_and_exit_s": round(
            exit_time("import phantomflow.api.cli, phantomflow.api.bootstrap"), 3
        ),
    }


def print_report(f: dict[str, Any]) -> None:
    report(
        [
            f"phantomflow render, {f['runs']} runs of a 1 s 320x240 script",
            f"  start to exit, median            {f['total_median_s']:.3f} s",
            f"  complete event to exit, median   {f['complete_to_exit_median_s']:.3f} s",
            f"  complete event to exit, max      {f['complete_to_exit_max_s']:.3f} s",
            f"  python -c pass                   {f['python_start_and_exit_s']:.3f} s",
            f"  importing the CLI, then exit     {f['cli_imports_start_and_exit_s']:.3f} s",
        ],
        f,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="renders to time (default 5)")
    options = parse_args(parser, argv, runs=1)
    return run_main("bench/cli_render.py", lambda: print_report(run(options)))


if __name__ == "__main__":
    sys.exit(main())
