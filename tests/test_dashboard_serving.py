"""How the API serves the dashboard: its files from the package, its security headers,
and no cached copy of any answer that holds account data. (The app itself runs in a
real browser in tests/test_dashboard.py.)"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from importlib import resources

import pytest
from aiohttp.test_utils import TestClient, TestServer

from phantomflow.api.app import create_app
from phantomflow.api.bootstrap import build_runtime
from phantomflow.api.dashboard import content_security_policy
from phantomflow.api.services import Services


@pytest.fixture
def sqlite_runtime(sqlite_settings):
    runtime = build_runtime(sqlite_settings)
    yield runtime
    runtime.close()


@pytest.fixture
async def client(sqlite_runtime) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Services(sqlite_runtime)))) as test_client:
        yield test_client


WEB = resources.files("phantomflow.api") / "web"


async def test_every_route_of_the_app_answers_its_page_with_the_security_headers(client):
    for path in ("/dashboard/", "/dashboard/jobs", "/dashboard/jobs/abc", "/dashboard/credits"):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type == "text/html"
        assert '<script type="module" src="/dashboard/static/js/main.js">' in await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_page_has_no_inline_script_or_style():
    page = (WEB / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script"
    assert "<style" not in page and "style=" not in page
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"


async def test_the_root_and_the_bare_prefix_lead_to_the_app(client):
    root = await client.get("/", allow_redirects=False)
    assert (root.status, root.headers["Location"]) == (302, "/dashboard/")
    bare = await client.get("/dashboard", allow_redirects=False)
    assert (bare.status, bare.headers["Location"]) == (301, "/dashboard/")


async def test_files_are_revalidated_by_etag_and_sent_gzipped(client):
    first = await client.get(
        "/dashboard/static/js/main.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert first.status == 200
    assert first.headers["Content-Type"].startswith("text/javascript")
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["Cache-Control"] == "no-cache"
    body = gzip.decompress(await first.read())
    assert body == (WEB / "js" / "main.js").read_bytes()
    again = await client.get(
        "/dashboard/static/js/main.js", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status == 304
    plain = await client.get(
        "/dashboard/static/js/main.js", headers={"Accept-Encoding": "identity"}
    )
    assert "Content-Encoding" not in plain.headers
    assert await plain.read() == body


async def test_only_the_bundled_files_can_be_fetched(client):
    missing = await client.get("/dashboard/static/nothing.js")
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "NOT_FOUND"
    for path in (
        "/dashboard/static/../dashboard.py",
        "/dashboard/static/%2e%2e/dashboard.py",
        "/dashboard/static/js/../../dashboard.py",
        "/dashboard/static/js/%2e%2e/%2e%2e/dashboard.py",
    ):
        response = await client.get(path)
        # A 404, or the app's page for a route it does not know: never a file outside.
        assert response.status in (200, 404), path
        assert "def install" not in await response.text(), path


async def test_every_module_the_app_imports_is_in_the_bundle(client):
    """A missing or misspelt import would only fail in a browser; check them all here."""
    js = WEB / "js"
    files = [*js.iterdir(), *(js / "pages").iterdir()]
    checked = 0
    for source in (f for f in files if f.name.endswith(".js")):
        text = source.read_text()
        for target in re.findall(r'(?:^import\s[^;]*?\sfrom\s+|import\()"([^"]+)"', text, re.M):
            folder = "js/pages" if source.parent.name == "pages" else "js"
            parts = [*folder.split("/"), *target.split("/")]
            resolved: list[str] = []
            for part in parts:
                if part == "..":
                    resolved.pop()
                elif part != ".":
                    resolved.append(part)
            response = await client.get("/dashboard/static/" + "/".join(resolved))
            assert response.status == 200, f"{source.name} imports {target}"
            checked += 1
    assert checked > 30  # the pattern finds the imports (static and dynamic)


def test_the_vendored_libraries_ship_with_their_licences():
    vendor = WEB / "vendor"
    for library, files in {
        "lit-html": ["lit-html.js", "LICENSE.txt"],
        "uplot": ["uPlot.esm.js", "uPlot.min.css", "LICENSE.txt"],
    }.items():
        for name in files:
            assert (vendor / library / name).is_file(), f"{library}/{name}"
    assert "BSD" in (vendor / "lit-html" / "LICENSE.txt").read_text()
    assert "MIT" in (vendor / "uplot" / "LICENSE.txt").read_text()


async def test_answers_that_hold_account_data_are_never_stored(client, sqlite_runtime):
    account = sqlite_runtime.app.open_account(plan="pro", credits=5)
    headers = {"x-api-key": account.api_key}
    for path in ("/api/credits", "/api/account", "/api/keys", "/api/jobs", "/api/credits/ledger"):
        response = await client.get(path, headers=headers)
        assert response.status == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    refused = await client.get("/api/credits")
    assert refused.headers["Cache-Control"] == "no-store"
    # The published schemas hold nothing of an account and may be cached.
    schema = await client.get("/api/render/schema")
    assert schema.headers["Cache-Control"].startswith("public")


def test_the_policy_admits_media_from_the_public_url_of_outputs_only():
    assert "media-src 'self';" in content_security_policy(None)
    policy = content_security_policy("https://cdn.example.com/base/")
    assert "media-src 'self' https://cdn.example.com;" in policy
    assert "img-src 'self' https://cdn.example.com;" in policy
    assert "connect-src 'self';" in policy
