"""The dashboard's job page, previews and integrations in a real browser (Playwright and
Debian's Chromium), against a live embedded server that may reach loopback addresses
(`PHANTOMFLOW_ALLOW_PRIVATE_URLS=1`), so exports, webhooks and media sources can go to
real servers started here: the session's FTP server, and a small HTTP server that
receives webhooks and serves a media file only when the test lets it.

The browser, the page fixture (which fails a test on a CSP violation, a script error or
a request to another host) and the helpers are tests/test_dashboard.py's.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import playwright.sync_api as playwright_api
import pytest

from tests import test_dashboard as ui
from tests import upload_files
from tests.conftest import TINY_SCRIPT
from tests.processes import RunningSystem, base_env, start_embedded
from tests.servers import ftp
from tests.test_dashboard import VIEWPORT, api, expect_text, nav, settled, sign_in

# tests/test_dashboard.py's fixtures: the browser, a watched page, the screenshots' folder.
browser = ui.browser
page = ui.page
screenshots = ui.screenshots

pytestmark = pytest.mark.ffmpeg

WAIT_S = 120


class Receiver:
    """Webhooks in (`POST /hook`, answered 200), and a media file out (`GET
    /held.png`) that is not answered until `release` is set, then 404: a render that
    needs it stays in its download for as long as a test wants."""

    def __init__(self) -> None:
        self.hooks: list[dict[str, Any]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.hooks.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                receiver.release.wait(60)
                self.send_error(404)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    folder = tmp_path_factory.mktemp("dashboard-features")
    env = {**base_env(folder), "PHANTOMFLOW_ALLOW_PRIVATE_URLS": "1"}
    system = start_embedded(folder, env)
    system.wait_until_up()
    yield system
    system.stop()


@pytest.fixture(scope="module")
def account(server: RunningSystem) -> dict[str, str]:
    return server.cli("accounts", "create", "--plan", "pro", "--credits", "100")


def wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.2)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- the job page ------------------------------------------------------------------------


def test_a_job_page_shows_metadata_exports_and_deliveries_then_redelivers_and_deletes(
    page,
    server,
    account,
    receiver,
    ftp_server,
    screenshots,
):
    key = account["api_key"]
    integration = api(
        server,
        "POST",
        "/api/integrations",
        key,
        {
            "type": "ftp",
            "name": "Archive",
            "settings": ftp_server.settings(),
            "secrets": {"password": ftp.PASSWORD},
        },
    )
    script = {
        **TINY_SCRIPT,
        "webhook_uri": f"{receiver.url}/hook",
        "metadata": {"order": "A-17", "lines": [1, 2]},
        "exports": [{"type": "ftp", "integration_id": integration["id"], "path": "dash"}],
    }
    job_id = api(server, "POST", "/api/render", key, script)["job_id"]
    p = page.page
    sign_in(p, key)
    p.goto(f"/dashboard/jobs/{job_id}")

    metadata = p.get_by_role("region", name="Metadata")
    expect_text(metadata, "order")
    expect_text(metadata, "A-17")
    expect_text(metadata, "[1,2]")
    # The export's status moves as the feed reports it, to where the file went.
    exports = p.get_by_role("region", name="Exports")
    expect_text(exports, "succeeded", timeout=WAIT_S * 1000)
    expect_text(exports, f"ftp://127.0.0.1:{ftp_server.port}/")
    assert (ftp_server.root / "dash" / f"{job_id}.mp4").stat().st_size > 0
    expect_text(p.locator(".timeline"), "Export 1: delivered to ftp://")

    webhook = p.get_by_role("region", name="Webhook")
    expect_text(webhook.locator("tbody"), "delivered", timeout=WAIT_S * 1000)
    playwright_api.expect(webhook.locator("tbody tr")).to_have_count(1)
    wait_for("the webhook", lambda: receiver.hooks)
    p.screenshot(path=screenshots / "job-exports.png", full_page=True)

    webhook.get_by_role("button", name="Redeliver").click()
    expect_text(p.locator(".notice"), "Redelivery 1 queued")
    # The new attempt arrives as a `webhook` event, and the page reloads its log.
    playwright_api.expect(webhook.locator("tbody tr")).to_have_count(2, timeout=WAIT_S * 1000)
    expect_text(webhook.locator("tbody tr").last, "manual")
    wait_for("the redelivery", lambda: len(receiver.hooks) >= 2)

    job = api(server, "GET", f"/api/jobs/{job_id}", key)
    assert status_of(job["output_uri"]) == 200
    dialogs: list[str] = []

    def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    p.once("dialog", refuse)
    p.get_by_role("button", name="Delete the video").click()
    assert dialogs and "cannot be restored" in dialogs[0]
    assert status_of(job["output_uri"]) == 200  # refused: nothing deleted
    p.once("dialog", lambda dialog: dialog.accept())
    p.get_by_role("button", name="Delete the video").click()
    expect_text(p.get_by_role("region", name="Video"), "The video was deleted")
    playwright_api.expect(p.locator("video")).to_have_count(0)
    playwright_api.expect(p.get_by_role("button", name="Delete the video")).to_have_count(0)
    assert api(server, "GET", f"/api/jobs/{job_id}", key)["output_deleted_at"]
    assert status_of(job["output_uri"]) == 410
    expect_text(p.locator(".timeline"), "The video and its poster were deleted")

    # Readable on a phone: nothing scrolls sideways.
    p.set_viewport_size({"width": 360, "height": 740})
    p.wait_for_timeout(50)
    assert p.evaluate("document.documentElement.scrollWidth") <= 360
    p.set_viewport_size(VIEWPORT)


def test_a_running_job_is_cancelled_from_its_page(page, server, account, receiver):
    key = account["api_key"]
    held = {
        **TINY_SCRIPT,
        "scenes": [
            {
                "duration": 1,
                "elements": [{"type": "image", "src": f"{receiver.url}/held.png"}],
            }
        ],
    }
    receiver.release.clear()
    try:
        job_id = api(server, "POST", "/api/render", key, held)["job_id"]
        p = page.page
        sign_in(p, key)
        p.goto(f"/dashboard/jobs/{job_id}")
        expect_text(p.locator(".stage"), "downloading", timeout=WAIT_S * 1000)
        p.once("dialog", lambda dialog: dialog.accept())
        p.get_by_role("button", name="Cancel job").click()
        expect_text(p.locator(".notice"), "Cancelled:")
        expect_text(p.locator("h1 .badge"), "cancelled")
        playwright_api.expect(p.get_by_role("button", name="Cancel job")).to_have_count(0)
        assert api(server, "GET", f"/api/jobs/{job_id}", key)["status"] == "cancelled"
    finally:
        receiver.release.set()


# --- previews ----------------------------------------------------------------------------


def test_new_render_prices_by_dry_run_and_previews_before_rendering_this(
    page,
    server,
    account,
    screenshots,
):
    key = account["api_key"]
    p = page.page
    sign_in(p, key)
    nav(p, "New render").click()
    editor = p.get_by_label("Movie script (JSON)")
    two_scenes = {
        **TINY_SCRIPT,
        "scenes": [
            {**TINY_SCRIPT["scenes"][0], "transition": {"type": "fade", "duration": 0.5}},
            {**TINY_SCRIPT["scenes"][0], "background": "#0000FF"},
        ],
        "metadata": {"campaign": "spring"},
    }
    editor.fill(json.dumps(two_scenes, indent=2))
    price = api(server, "POST", "/api/render?dry_run=true", key, two_scenes)["estimated_credits"]
    priced = f"{price} credit{'' if price == 1 else 's'}"
    expect_text(p.locator(".quote"), f"{priced} for 1.50 s")

    # The estimate is a dry run, asked once a burst of typing stops, not per keystroke.
    def dry_runs() -> int:
        return len([r for r in page.requests if "dry_run=true" in r.url])

    before = dry_runs()
    editor.press("Control+End")
    editor.press_sequentially("      ", delay=30)
    p.wait_for_timeout(1000)
    assert dry_runs() - before == 1

    jobs_before = api(server, "GET", "/api/jobs", key)["total"]
    p.get_by_role("button", name="Preview", exact=True).click()
    preview = p.get_by_role("region", name="Preview")
    # The storyboard first: one still a scene and one a transition, drawn images.
    stills = preview.locator(".storyboard img")
    playwright_api.expect(stills).to_have_count(3, timeout=WAIT_S * 1000)
    expect_text(preview.locator(".storyboard"), "Transition after scene 1")
    p.wait_for_function(
        "() => [...document.querySelectorAll('.storyboard img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    # Then the proxy, a video that plays, its first still as its poster.
    video = preview.locator("video")
    video.wait_for(timeout=WAIT_S * 1000)
    p.wait_for_function(
        "() => document.querySelector('.preview video').readyState >= 2", timeout=30_000
    )
    duration = p.evaluate("document.querySelector('.preview video').duration")
    assert abs(duration - 1.5) < 0.2, duration
    assert video.get_attribute("poster") == stills.first.get_attribute("src")
    progress = preview.get_by_role("progressbar", name="Preview progress")
    playwright_api.expect(progress).to_have_attribute("value", "100")
    expect_text(preview, f"Rendering it costs {priced}")
    # Followed on the preview's own stream, the key in a header.
    streams = [
        r for r in page.requests if r.url.endswith("/progress") and "/api/previews/" in r.url
    ]
    assert streams and streams[0].headers["x-api-key"] == key
    assert api(server, "GET", "/api/jobs", key)["total"] == jobs_before  # nothing rendered
    preview.scroll_into_view_if_needed()
    p.screenshot(path=screenshots / "preview.png")

    p.set_viewport_size({"width": 360, "height": 740})
    p.wait_for_timeout(50)
    assert p.evaluate("document.documentElement.scrollWidth") <= 360
    p.set_viewport_size(VIEWPORT)

    # Editing after the preview says so; Render this renders what was previewed.
    editor.fill(json.dumps({**two_scenes, "metadata": {"campaign": "autumn"}}, indent=2))
    expect_text(preview, "has changed since this preview")
    preview.get_by_role("button", name="Render this").click()
    p.wait_for_url("**/dashboard/jobs/*")
    job_id = p.url.rsplit("/", 1)[1]
    expect_text(p.get_by_role("region", name="Metadata"), "spring")
    job = api(server, "GET", f"/api/jobs/{job_id}", key)
    assert job["metadata"] == {"campaign": "spring"}
    events = api(server, "GET", f"/api/jobs/{job_id}/events", key)["events"]
    assert events[0]["data"]["origin"]["channel"] == "preview"


def test_a_preview_whose_stream_is_refused_is_followed_by_reading_it(page, server, account):
    p = page.page
    p.route("**/api/previews/*/progress", lambda route: route.abort())
    sign_in(p, account["api_key"])
    p.goto("/dashboard/render")
    p.get_by_label("Movie script (JSON)").fill(json.dumps(TINY_SCRIPT))
    expect_text(p.locator(".quote"), "for 1.00 s")
    p.get_by_role("button", name="Preview", exact=True).click()
    preview = p.get_by_role("region", name="Preview")
    preview.locator("video").wait_for(timeout=WAIT_S * 1000)
    playwright_api.expect(preview.locator(".storyboard img")).to_have_count(1)
    reads = [r.url for r in page.requests if "/api/previews/prv_" in r.url]
    assert any(url.endswith("/progress") for url in reads)  # tried, and refused
    assert len([url for url in reads if not url.endswith("/progress")]) >= 1


def test_a_preview_of_a_bad_script_shows_the_error_at_its_path(page, server, account):
    p = page.page
    sign_in(p, account["api_key"])
    p.goto("/dashboard/render")
    overlapping = {
        **TINY_SCRIPT,
        "scenes": [
            {"duration": 1, "transition": {"type": "fade", "duration": 2}},
            {"duration": 1},
        ],
    }
    p.get_by_label("Movie script (JSON)").fill(json.dumps(overlapping))
    expect_text(p.locator(".quote"), "scenes.0.transition.duration")
    p.get_by_role("button", name="Preview", exact=True).click()
    expect_text(
        p.get_by_role("region", name="Preview").get_by_role("alert"),
        "scenes.0.transition.duration",
    )


# --- integrations ------------------------------------------------------------------------


def test_integrations_are_created_per_type_with_write_only_secrets_and_deleted(
    page,
    server,
    account,
    ftp_server,
    screenshots,
):
    key = account["test_api_key"]  # its own integrations, apart from the live key's
    p = page.page
    sign_in(p, key)
    nav(p, "Integrations").click()
    expect_text(p.locator("main"), "No integrations yet")

    # Each type asks for its own settings and secrets.
    form = p.locator("form.integration-form")
    p.get_by_label("Type").select_option("sftp")
    form.get_by_label("The server's host key (one OpenSSH line)", exact=True).wait_for()
    playwright_api.expect(
        form.get_by_label("Private key (optional)", exact=True)
    ).to_have_attribute("spellcheck", "false")
    p.get_by_label("Type").select_option("youtube")
    form.get_by_label("OAuth client id", exact=True).wait_for()
    assert (
        form.get_by_label("Refresh token (granted youtube.upload)", exact=True).get_attribute(
            "type"
        )
        == "password"
    )

    # A refused value: the API's message, its path, and the field marked.
    p.get_by_label("Type").select_option("s3")
    form.get_by_label("Name", exact=True).fill("Bad bucket")
    form.get_by_label("Bucket", exact=True).fill("Not_A_Bucket")
    form.get_by_label("Access key id", exact=True).fill("AKIAEXAMPLE")
    form.get_by_label("Secret access key", exact=True).fill("s3-secret-0123456789")
    form.get_by_role("button", name="Create integration").click()
    expect_text(form.get_by_role("alert"), "settings.bucket")
    playwright_api.expect(form.get_by_label("Bucket", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )

    p.get_by_label("Type").select_option("ftp")
    password = "ftp-dashboard-secret-4321"
    form.get_by_label("Name", exact=True).fill("Studio FTP")
    form.get_by_label("Host", exact=True).fill("127.0.0.1")
    form.get_by_label("Port (optional)", exact=True).fill(str(ftp_server.port))
    form.get_by_label("User name", exact=True).fill(ftp.USER)
    form.get_by_label("Use TLS (explicit FTPS)", exact=True).check()
    form.get_by_label("Password", exact=True).fill(password)
    form.get_by_role("button", name="Create integration").click()
    expect_text(p.locator(".notice"), "Created Studio FTP")
    row = p.locator("tr", has_text="Studio FTP")
    expect_text(row, "ftp")
    expect_text(row, f"{ftp.USER}@127.0.0.1:{ftp_server.port}")
    expect_text(row, "password (…4321)")
    # Write-only: the form forgot it, the page never shows it, the tab keeps none of it.
    playwright_api.expect(form.get_by_label("Password", exact=True)).to_have_value("")
    assert password not in p.content()
    assert password not in p.evaluate("JSON.stringify(sessionStorage)")
    listed = api(server, "GET", "/api/integrations", key)["integrations"]
    assert [(i["name"], i["settings"]["tls"]) for i in listed] == [("Studio FTP", True)]
    assert password not in json.dumps(listed)
    live = api(server, "GET", "/api/integrations", account["api_key"])["integrations"]
    assert "Studio FTP" not in [i["name"] for i in live]
    p.screenshot(path=screenshots / "integrations.png", full_page=True)

    p.set_viewport_size({"width": 360, "height": 740})
    p.wait_for_timeout(50)
    assert p.evaluate("document.documentElement.scrollWidth") <= 360
    p.set_viewport_size(VIEWPORT)

    p.once("dialog", lambda dialog: dialog.accept())
    p.get_by_role("button", name="Delete Studio FTP").click()
    expect_text(p.locator("main"), "No integrations yet")
    assert api(server, "GET", "/api/integrations", key)["integrations"] == []
    settled(p)


# --- the jobs list, by metadata ----------------------------------------------------------


def test_the_jobs_list_finds_jobs_by_one_metadata_key(page, server):
    key = server.cli("accounts", "create", "--plan", "pro", "--credits", "10")["test_api_key"]
    ids = {
        order: api(
            server, "POST", "/api/render", key, {**TINY_SCRIPT, "metadata": {"order": order}}
        )["job_id"]
        for order in ("B-1", "B-2")
    }
    # The list is the read model, a moment behind: wait until it has both, rendered.
    wait_for(
        "the read model",
        lambda: api(server, "GET", "/api/jobs?status=completed", key)["total"] == 2,
    )
    p = page.page
    sign_in(p, key)
    p.get_by_label("Metadata key").fill("order")
    p.get_by_label("equals").fill("B-2")
    p.get_by_role("button", name="Find").click()
    p.wait_for_url("**/dashboard/jobs?metadata.order=B-2")
    rows = p.locator("table.jobs tbody tr")
    playwright_api.expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-job") == ids["B-2"]
    # The status filter keeps the metadata one.
    p.get_by_label("Status").select_option("completed")
    p.wait_for_url("**/dashboard/jobs?status=completed&metadata.order=B-2")
    settled(p)
    p.get_by_label("equals").fill("none such")
    p.get_by_role("button", name="Find").click()
    expect_text(p.locator("main"), "No completed jobs with order = none such.")
    # A key the API refuses: its message, at its parameter.
    p.get_by_label("Metadata key").fill("no spaces")
    p.get_by_role("button", name="Find").click()
    expect_text(p.get_by_role("alert"), "metadata.no spaces")
    p.get_by_role("link", name="Clear").click()
    p.wait_for_url("**/dashboard/jobs?status=completed")
    playwright_api.expect(rows).to_have_count(2)


def test_a_template_is_previewed_with_its_variables_then_rendered(page, server):
    key = server.cli("accounts", "create", "--plan", "pro", "--credits", "10")["api_key"]
    script = {
        **TINY_SCRIPT,
        "scenes": [
            {
                "duration": 1,
                "background": "#{{hex}}",
                "elements": [{"type": "text", "text": "{{headline}}", "font_size": 24}],
            }
        ],
    }
    template = api(server, "POST", "/api/templates", key, {"name": "Promo", "script": script})
    p = page.page
    sign_in(p, key)
    p.goto(f"/dashboard/render?template={template['id']}")
    p.get_by_label("hex").fill("00AA00")
    p.get_by_label("headline").fill("Summer sale")
    expect_text(p.locator(".quote"), "for 1.00 s")
    p.get_by_role("button", name="Preview", exact=True).click()
    preview = p.get_by_role("region", name="Preview")
    playwright_api.expect(preview.locator(".storyboard img")).to_have_count(
        1, timeout=WAIT_S * 1000
    )
    preview.locator("video").wait_for(timeout=WAIT_S * 1000)
    # The still is the template with these variables: green.
    green = p.evaluate(
        """async () => {
          const img = document.querySelector('.storyboard img');
          await img.decode();
          const canvas = document.createElement('canvas');
          canvas.width = img.naturalWidth;
          canvas.height = img.naturalHeight;
          const g = canvas.getContext('2d');
          g.drawImage(img, 0, 0);
          return Array.from(g.getImageData(4, 4, 1, 1).data.slice(0, 3));
        }"""
    )
    assert green[1] > 140 and green[0] < 60 and green[2] < 60, green
    preview.get_by_role("button", name="Render this").click()
    p.wait_for_url("**/dashboard/jobs/*")
    job_id = p.url.rsplit("/", 1)[1]
    events = api(server, "GET", f"/api/jobs/{job_id}/events", key)["events"]
    origin = events[0]["data"]["origin"]
    assert (origin["channel"], origin["template_id"]) == ("preview", template["id"])
    assert events[0]["data"]["script"]["scenes"][0]["elements"][0]["text"] == "Summer sale"


# --- assets ------------------------------------------------------------------------------


def test_assets_are_dropped_with_a_progress_bar_listed_and_deleted(page, server, screenshots):
    key = server.cli("accounts", "create", "--plan", "pro", "--credits", "10")["api_key"]
    p = page.page
    sign_in(p, key)
    nav(p, "Assets").click()
    expect_text(p.locator("main"), "No assets yet")

    # Chosen with the keyboard: the file input behind "Choose files".
    p.get_by_label("Choose files").set_input_files(
        {"name": "logo.png", "mimeType": "image/png", "buffer": upload_files.png(32, 24)}
    )
    expect_text(p.locator(".notice"), "Uploaded logo.png")
    row = p.locator("tr", has_text="logo.png")
    expect_text(row, "image")
    expect_text(row, "32×24")

    # Dropped, over a throttled connection, so the upload takes a while: the bar moves.
    cdp = p.context.new_cdp_session(p)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 150_000},
    )
    sound = upload_files.wav(3.0)
    p.evaluate(
        """() => {
          window.__uploadSeen = [];
          new MutationObserver(() => {
            const bar = document.querySelector('progress[aria-label="Upload progress"]');
            if (bar) window.__uploadSeen.push(Number(bar.value));
          }).observe(document.getElementById('main'),
                     {subtree: true, childList: true, attributes: true});
        }"""
    )
    p.evaluate(
        """([name, b64]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], name, {type: 'audio/wav'}));
          const zone = document.querySelector('[data-testid="dropzone"]');
          zone.dispatchEvent(new DragEvent('dragenter', {dataTransfer: data, bubbles: true}));
          zone.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        }""",
        ["jingle.wav", base64.b64encode(sound).decode()],
    )
    expect_text(p.locator(".notice"), "Uploaded jingle.wav", timeout=WAIT_S * 1000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    seen = p.evaluate("window.__uploadSeen")
    assert any(0 < value < 100 for value in seen), seen
    expect_text(p.locator("tr", has_text="jingle.wav"), "3.00 s")
    listed = api(server, "GET", "/api/assets", key)
    assert sorted(a["name"] for a in listed["assets"]) == ["jingle.wav", "logo.png"]
    expect_text(p.locator(".storage"), "Storage:")
    assert listed["storage"]["used_bytes"] == sum(a["size"] for a in listed["assets"])
    p.screenshot(path=screenshots / "assets.png", full_page=True)

    # A file that is not media: the API's own words.
    p.get_by_label("Choose files").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture\n"}
    )
    expect_text(p.get_by_role("alert"), "notes.txt is not a file we take")

    p.set_viewport_size({"width": 360, "height": 740})
    p.wait_for_timeout(50)
    assert p.evaluate("document.documentElement.scrollWidth") <= 360
    p.set_viewport_size(VIEWPORT)

    logo = next(a for a in listed["assets"] if a["name"] == "logo.png")
    p.once("dialog", lambda dialog: dialog.accept())
    p.get_by_role("button", name="Delete logo.png").click()
    playwright_api.expect(p.locator("tr", has_text="logo.png")).to_have_count(0)
    with pytest.raises(urllib.error.HTTPError) as gone:
        api(server, "GET", f"/api/assets/{logo['id']}", key)
    assert gone.value.code == 404
