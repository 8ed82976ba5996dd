"""Benchmark template renders against plain renders on PostgreSQL: what substitution costs.

    python bench/template_render.py [--requests N] [--concurrency C] [--rounds R]

Runs in a fresh schema `bench_<random>` of the `test` database (dropped at the end):

1. HTTP, against the real API process (`python -m phantomflow.api.cli api`): N `POST /api/render` of
   a tiny script and N `POST /api/render/template` of a template that renders the same
   script once its variables (text, duration, colour) are substituted, from C concurrent
   senders. The two kinds alternate in R rounds of N/R requests each, so a drift of the
   machine (autovacuum, a neighbour) affects both alike. Every answer must be 202.
   Prints requests/s and latency percentiles per kind, and the template/plain ratio.
2. In process, one thread: the cost of each step a template render adds to a plain one,
   per call: validating the script (both do it), substituting the variables, and
   reading the template from the event store.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "bench"):
    if str(path) not in sys.path:  # so `python bench/template_render.py` finds the project
        sys.path.insert(0, str(path))

from submit import (  # noqa: E402  (bench/submit.py: the API process and the schema)
    DATABASE_URL,
    TINY_SCRIPT,
    BenchError,
    bench_schema,
    check_postgres,
    open_bench_account,
    percentile,
    start_api,
    wait_until_answering,
)

from phantomflow.adapters.settings import Settings  # noqa: E402
from phantomflow.api.bootstrap import build_runtime  # noqa: E402
from phantomflow.api.schemas import load_render_request  # noqa: E402
from phantomflow.domain.substitution import substitute  # noqa: E402

# TINY_SCRIPT with its text, duration and background as variables.
TEMPLATE_SCRIPT: dict[str, Any] = {
    **TINY_SCRIPT,
    "scenes": [
        {
            "duration": "{{duration}}",
            "background": "{{background}}",
            "elements": [{"type": "text", "text": "{{headline}}", "font_size": 24}],
        }
    ],
}
VARIABLES = {"duration": 1, "background": "#FF0000", "headline": "Hello"}


@dataclass
class Kind:
    name: str
    path: str
    body: bytes
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


async def fire(base_url: str, api_key: str, kind: Kind, requests: int, concurrency: int) -> None:
    headers = {"x-api-key": api_key, "content-type": "application/json"}
    issued = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()

        async def sender() -> None:
            nonlocal issued
            while issued < requests:
                issued += 1
                sent = time.perf_counter()
                try:
                    async with session.post(
                        base_url + kind.path, data=kind.body, headers=headers
                    ) as response:
                        answer = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    kind.failures.append(f"{type(error).__name__}: {error}")
                    continue
                if status != 202:
                    kind.failures.append(f"HTTP {status}: {answer[:300].decode(errors='replace')}")
                    continue
                kind.latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(sender() for _ in range(concurrency)))
        kind.elapsed += time.perf_counter() - start


def per_call(fn: Callable[[], Any], repeat: int) -> float:
    """Mean seconds per call of `fn` over `repeat` calls (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def run(args: argparse.Namespace) -> dict[str, Any]:
    check_postgres(DATABASE_URL)
    figures: dict[str, Any] = {
        "requests_per_kind": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
    }
    with (
        tempfile.TemporaryDirectory(prefix="phantomflow-bench-") as tmp,
        bench_schema(DATABASE_URL) as schema,
    ):
        workdir = Path(tmp)
        settings = Settings(
            data_dir=workdir / "data", database_url=DATABASE_URL, database_schema=schema
        )
        runtime = build_runtime(settings)
        try:
            credits = 10 * (2 * args.requests + 4 * args.concurrency) + 1000
            account = open_bench_account(runtime, credits)
            template = runtime.app.create_template(
                account.account_id, "Bench", TEMPLATE_SCRIPT, is_public=False
            ).template

            # 2. In process (before the API starts, so it has the machine to itself).
            repeat = 2000
            validate = per_call(lambda: load_render_request(dict(TINY_SCRIPT)), repeat)
            substitute_only = per_call(lambda: substitute(TEMPLATE_SCRIPT, VARIABLES), repeat)
            read = per_call(
                lambda: runtime.app.get_template(template.id, account.account_id), repeat // 4
            )
            figures.update(
                validate_us=round(validate * 1e6, 1),
                substitute_us=round(substitute_only * 1e6, 1),
                template_read_us=round(read * 1e6, 1),
            )
        finally:
            runtime.close()

        plain = Kind("plain", "/api/render", json.dumps(TINY_SCRIPT).encode())
        templated = Kind(
            "template",
            "/api/render/template",
            json.dumps({"template_id": template.ref, "variables": VARIABLES}).encode(),
        )

        # 1. HTTP.
        api = start_api(schema, workdir / "data", workdir / "api.log")
        try:
            asyncio.run(wait_until_answering(api))
            for kind in (plain, templated):  # warm-up, not counted
                warm = Kind(kind.name, kind.path, kind.body)
                asyncio.run(fire(api.base_url, account.api_key, warm, 2 * args.concurrency,
                                 args.concurrency))  # fmt: skip
                if warm.failures:
                    raise BenchError(f"{kind.name} warm-up failed: {warm.failures[0]}")
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                for kind in (plain, templated):
                    asyncio.run(
                        fire(api.base_url, account.api_key, kind, per_round, args.concurrency)
                    )
            if api.process.poll() is not None:
                raise BenchError(f"the API process died:\n{api.log_tail()}")
        finally:
            api.stop()
        for kind in (plain, templated):
            if kind.failures:
                raise BenchError(
                    f"{len(kind.failures)} {kind.name} renders did not answer 202;"
                    f" first: {kind.failures[0]}"
                )
            latencies = sorted(kind.latencies)
            figures.update(
                {
                    f"{kind.name}_per_s": round(kind.rate, 1),
                    f"{kind.name}_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                    f"{kind.name}_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                }
            )
        figures["template_to_plain_ratio"] = round(templated.rate / plain.rate, 3)
    return figures


def report(f: dict[str, Any]) -> None:
    print(
        f"""
PhantomFlow template render benchmark — {f["requests_per_kind"]} requests per kind,\
 concurrency {f["concurrency"]}, {f["rounds"]} alternating rounds, {f["cpus"]} CPUs
  POST /api/render            {f["plain_per_s"]:>8.1f} /s   p50 {f["plain_p50_ms"]:.1f} ms\
   p99 {f["plain_p99_ms"]:.1f} ms
  POST /api/render/template   {f["template_per_s"]:>8.1f} /s   p50 {f["template_p50_ms"]:.1f} ms\
   p99 {f["template_p99_ms"]:.1f} ms
  template / plain            {f["template_to_plain_ratio"]:>8.3f}
  per call, in process: validate {f["validate_us"]:.1f} µs, substitute\
 {f["substitute_us"]:.1f} µs, read the template {f["template_read_us"]:.1f} µs
"""
    )
    print(json.dumps(f, sort_keys=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="renders per kind")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    args = parser.parse_args(argv)
    if args.requests < args.rounds or args.concurrency < 1 or args.rounds < 1:
        parser.error("need --requests >= --rounds >= 1 and --concurrency >= 1")
    try:
        figures = run(args)
    except BenchError as error:
        print(f"bench/template_render.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/template_render.py: interrupted", file=sys.stderr)
        return 130
    report(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
