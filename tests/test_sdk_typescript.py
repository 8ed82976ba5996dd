"""The TypeScript SDK (clients/typescript): its Node tests (`node --test`) run against the
live embedded server started here. Without Node the test skips, except in CI."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

from tests import upload_files
from tests.conftest import service_missing
from tests.live_server import LiveServer
from tests.sdk_operations import SDK_METHODS

PACKAGE = Path(__file__).resolve().parent.parent / "clients" / "typescript"
ACCOUNTS = 20  # per test file, one per Node test, so that none sees another's jobs or credits


def npm(*args: str) -> None:
    done = subprocess.run(
        [shutil.which("npm") or "npm", *args],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"npm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


def test_the_typescript_sdk_passes_its_node_tests_against_the_live_server(tmp_path: Path):
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        service_missing("Node.js and npm")
    if not (PACKAGE / "node_modules").is_dir():
        npm("ci", "--no-audit", "--no-fund")  # scripts/test does it first; this is for pytest alone
    npm("run", "build")
    tests = [path.relative_to(PACKAGE) for path in (PACKAGE / "test").glob("*.test.mjs")]
    assert tests

    server = LiveServer(tmp_path / "server", rate_window_seconds=2).start()
    try:
        accounts = {
            test.name: [
                {"api_key": a.api_key, "test_api_key": a.test_api_key}
                for a in (server.open_account(plan="pro", credits=1000) for _ in range(ACCOUNTS))
            ]
            for test in tests
        }
        tight = server.open_account(plan="pro", credits=10)
        server.change_plan(tight.account_id, "enterprise", requests_per_minute=1)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PHANTOMFLOW_")},
            "PHANTOMFLOW_URL": server.url,
            "PHANTOMFLOW_TEST_ACCOUNTS": json.dumps(accounts),
            "PHANTOMFLOW_SDK_METHODS": json.dumps(
                {operation: methods[1] for operation, methods in SDK_METHODS.items() if methods}
            ),
            "PHANTOMFLOW_TIGHT_API_KEY": tight.api_key,
            "PHANTOMFLOW_TEST_PNG": base64.b64encode(upload_files.png()).decode(),
        }
        done = subprocess.run(
            [node, "--test", "--test-reporter=spec", *sorted(map(str, tests))],
            cwd=PACKAGE,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        server.stop()

    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    assert "# fail 0" in done.stdout or "ℹ fail 0" in done.stdout, done.stdout[-5000:]
