"""`phantomflow render FILE --out OUT`: the whole embedded system, for one script.

It starts the embedded server on a free local port, opens an account, and then does
exactly what a client would: POST the script, poll the job, download the MP4.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from phantomflow.adapters.settings import Settings
from phantomflow.api.bootstrap import Embedded

DEMO_CREDITS = 1000


def render_file(script_path: Path, out: Path, timeout: float) -> int:
    script = json.loads(script_path.read_text())
    # The progress lines below tell the story; one access-log line per poll would bury them.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    settings = Settings.from_env()
    if not settings.embedded:
        print("render uses the embedded default; unset DATABASE_URL", file=sys.stderr)
        return 2
    return asyncio.run(_render(settings, script, out, timeout))


async def _render(settings: Settings, script: dict[str, Any], out: Path, timeout: float) -> int:
    system = Embedded(settings)
    runner = web.AppRunner(system.http_app())  # starts the worker and followers with it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        account = system.runtime.app.open_account(plan="free", credits=DEMO_CREDITS)
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": account.api_key}
        ) as client:
            return await _submit_and_wait(client, script, out, timeout)
    finally:
        await runner.cleanup()


async def _submit_and_wait(
    client: aiohttp.ClientSession, script: dict[str, Any], out: Path, timeout: float
) -> int:
    async with client.post("/api/render", json=script) as response:
        submitted = await response.json()
        if response.status != 202:
            print(json.dumps(submitted, indent=2), file=sys.stderr)
            return 1
    print(f"submitted job {submitted['job_id']} ({submitted['estimated_credits']} credits)")
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        async with client.get(f"/api/jobs/{submitted['job_id']}") as response:
            job = await response.json()
        print(f"  {job.get('status')}: {job.get('stage') or '-'} {job.get('progress', 0):.0%}")
        if job.get("status") in ("completed", "failed"):
            break
        await asyncio.sleep(0.5)
    if job.get("status") != "completed":
        print(json.dumps(job, indent=2), file=sys.stderr)
        return 1
    async with client.get(job["output_uri"]) as response:
        out.write_bytes(await response.read())
    seconds, credits = job["duration_seconds"], job["credits_used"]
    print(f"rendered {seconds:.2f} s, {credits} credits -> {out.resolve()}")
    return 0
