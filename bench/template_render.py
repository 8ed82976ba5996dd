"""Benchmark template renders against plain renders on PostgreSQL: what substitution costs.

    python bench/template_render.py [--requests N] [--concurrency C] [--rounds R] [--smoke]

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
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness import (
    TINY_SCRIPT,
    BenchError,
    Call,
    HttpResult,
    bench_parser,
    fire,
    new_runtime,
    open_bench_account,
    parse_args,
    percentile,
    postgres_workspace,
    report,
    run_main,
    running_apis,
)

from phantomflow.api.schemas import load_render_request
from phantomflow.domain.substitution import substitute

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


def per_call(fn: Callable[[], Any], repeat: int) -> float:
    """Mean seconds per call of `fn` over `repeat` calls (after one warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "smoke": args.smoke,
        "requests_per_kind": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
    }
    with postgres_workspace() as (settings, workdir):
        runtime = new_runtime(settings)
        try:
            credits = 10 * (2 * args.requests + 4 * args.concurrency) + 1000
            account = open_bench_account(runtime, credits)
            template = runtime.app.create_template(
                account.account_id, "Bench", TEMPLATE_SCRIPT, is_public=False
            ).template

            # 2. In process (before the API starts, so it has the machine to itself).
            repeat = args.repeat
            validate = per_call(lambda: load_render_request(dict(TINY_SCRIPT)), repeat)
            substitute_only = per_call(lambda: substitute(TEMPLATE_SCRIPT, VARIABLES), repeat)
            read = per_call(
                lambda: runtime.app.get_template(template.id, account.account_id),
                max(1, repeat // 4),
            )
            figures.update(
                validate_us=round(validate * 1e6, 1),
                substitute_us=round(substitute_only * 1e6, 1),
                template_read_us=round(read * 1e6, 1),
            )
        finally:
            runtime.close()

        keys = [account.api_key]
        body = json.dumps({"template_id": template.ref, "variables": VARIABLES}).encode()
        calls = {
            "plain": Call.render(keys),
            "template": Call("POST", "/api/render/template", keys, body, 202),
        }
        results = {name: HttpResult(elapsed=0.0, latencies=[], completions=[]) for name in calls}

        # 1. HTTP.
        with running_apis(settings, workdir) as apis:
            base_url = apis[0].base_url
            for name, call in calls.items():  # warm-up, not counted
                warm = asyncio.run(fire(base_url, call, 2 * args.concurrency, args.concurrency))
                if warm.failures:
                    raise BenchError(f"{name} warm-up failed: {warm.failures[0]}")
            per_round = max(1, args.requests // args.rounds)
            for _ in range(args.rounds):
                for name, call in calls.items():
                    results[name].add(
                        asyncio.run(fire(base_url, call, per_round, args.concurrency))
                    )
            apis[0].check_alive()
        for name, result in results.items():
            if result.failures:
                raise BenchError(
                    f"{len(result.failures)} {name} renders did not answer 202;"
                    f" first: {result.failures[0]}"
                )
            latencies = sorted(result.latencies)
            figures.update(
                {
                    f"{name}_per_s": round(result.rate, 1),
                    f"{name}_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                    f"{name}_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                }
            )
        figures["template_to_plain_ratio"] = round(
            results["template"].rate / results["plain"].rate, 3
        )
    return figures


def print_report(f: dict[str, Any]) -> None:
    report(
        [
            "",
            f"PhantomFlow template render benchmark — {f['requests_per_kind']} requests per"
            f" kind, concurrency {f['concurrency']}, {f['rounds']} alternating rounds,"
            f" {f['cpus']} CPUs",
            f"  POST /api/render            {f['plain_per_s']:>8.1f} /s"
            f"   p50 {f['plain_p50_ms']:.1f} ms   p99 {f['plain_p99_ms']:.1f} ms",
            f"  POST /api/render/template   {f['template_per_s']:>8.1f} /s"
            f"   p50 {f['template_p50_ms']:.1f} ms   p99 {f['template_p99_ms']:.1f} ms",
            f"  template / plain            {f['template_to_plain_ratio']:>8.3f}",
            f"  per call, in process: validate {f['validate_us']:.1f} µs, substitute"
            f" {f['substitute_us']:.1f} µs, read the template {f['template_read_us']:.1f} µs",
            "",
        ],
        f,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="renders per kind")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument("--repeat", type=int, default=2000, help="calls per in-process step")
    args = parse_args(parser, argv, requests=8, concurrency=2, rounds=2, repeat=20)
    if args.requests < args.rounds or args.concurrency < 1 or args.rounds < 1:
        parser.error("need --requests >= --rounds >= 1 and --concurrency >= 1")

    return run_main("bench/template_render.py", lambda: print_report(run(args)))


if __name__ == "__main__":
    sys.exit(main())
