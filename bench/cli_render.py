"""How long `phantomflow render` takes to give the shell back after the job completes.

    python bench/cli_render.py [--runs 5]

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
from pathlib import Path

SCRIPT = {
    "width": 320,
    "height": 240,
    "fps": 15,
    "quality": "low",
    "scenes": [{"duration": 1, "background": "#FF0000", "elements": []}],
}


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
        raise SystemExit("the render failed")
    ended = time.monotonic()
    return ended - started, ended - completed


def exit_time(code: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.monotonic() - started


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=5, help="renders to time (default 5)")
    runs = options.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as scratch:
        work = Path(scratch)
        (work / "script.json").write_text(json.dumps(SCRIPT))
        timings = [one_render(work) for _ in range(runs)]
    totals = [total for total, _ in timings]
    tails = [tail for _, tail in timings]
    bare = exit_time("pass")
    imports = exit_time("import phantomflow.api.cli, phantomflow.api.bootstrap")
    figures = {
        "runs": runs,
        "total_median_s": round(statistics.median(totals), 3),
        "complete_to_exit_median_s": round(statistics.median(tails), 3),
        "complete_to_exit_max_s": round(max(tails), 3),
        "python_start_and_exit_s": round(bare, 3),
        "cli_imports_start_and_exit_s": round(imports, 3),
    }
    print(f"phantomflow render, {runs} runs of a 1 s 320x240 script")
    print(f"  start to exit, median            {figures['total_median_s']:.3f} s")
    print(f"  complete event to exit, median   {figures['complete_to_exit_median_s']:.3f} s")
    print(f"  complete event to exit, max      {figures['complete_to_exit_max_s']:.3f} s")
    print(f"  python -c pass                   {figures['python_start_and_exit_s']:.3f} s")
    print(f"  importing the CLI, then exit     {figures['cli_imports_start_and_exit_s']:.3f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
