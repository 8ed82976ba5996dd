"""The Python SDK's newer parts against the live embedded server: integrations,
exports and metadata on renders, dry runs, deleting a job's files, previews; and a
table that holds both SDKs to every operation of the served OpenAPI document."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator
from operator import attrgetter

import pytest

from phantomflow_client import (
    AsyncClient,
    BadRequestError,
    Client,
    ConflictError,
    ErrorEvent,
    ExportEvent,
    GoneError,
    Job,
    NotFoundError,
    PreviewCompleteEvent,
    ProgressEvent,
    StoryboardEvent,
)
from phantomflow_client.models import JOB_EVENTS, PREVIEW_EVENTS
from tests import upload_files
from tests.conftest import TINY_SCRIPT
from tests.live_server import LiveServer
from tests.media import ffprobe
from tests.sdk_operations import SDK_METHODS

EMAIL = {"host": "smtp.example.com", "from_address": "renders@example.com"}
TWO_SCENES = {
    **TINY_SCRIPT,
    "scenes": [
        {"duration": 1, "background": "#FF0000"},
        {"duration": 1, "background": "#0000FF"},
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("sdk-routes")).start()
    yield live
    live.stop()


@pytest.fixture
def account(server: LiveServer):
    return server.open_account(plan="pro", credits=1000)


@pytest.fixture
def client(server: LiveServer, account) -> Iterator[Client]:
    with Client(account.api_key, base_url=server.url) as live:
        yield live


@pytest.fixture
def sandbox(server: LiveServer, account) -> Iterator[Client]:
    with Client(account.test_api_key, base_url=server.url) as test:
        yield test


def listed_by_metadata(client: Client, key: str, value) -> list[str]:
    """The ids `jobs.list` finds by metadata once the read model has caught up with the
    job (the list reads it; it may be a moment behind)."""
    deadline = time.monotonic() + 20
    while True:
        found = [job.job_id for job in client.jobs.list(metadata={key: value}).jobs]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


# --- every operation has a method ----------------------------------------------------


def test_every_operation_of_the_served_document_has_a_method_in_the_table(client: Client):
    served = {
        operation["operationId"]
        for path in client.schema.openapi()["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }

    assert set(SDK_METHODS) == served, "add the new operation's SDK methods to the table"


def test_every_event_of_the_served_streams_has_a_typed_event(client: Client):
    schemas = client.schema.openapi()["components"]["schemas"]
    served = {
        stream: set(schemas[stream]["discriminator"]["mapping"])
        for stream in ("JobStreamEvent", "AccountStreamEvent", "PreviewStreamEvent")
    }

    assert served["JobStreamEvent"] | served["AccountStreamEvent"] == set(JOB_EVENTS)
    assert served["PreviewStreamEvent"] == set(PREVIEW_EVENTS)


def test_each_method_of_the_table_exists_on_both_python_clients(server: LiveServer):
    with Client("key", base_url=server.url) as sync_client:
        async_client = AsyncClient("key", base_url=server.url)
        for operation, methods in SDK_METHODS.items():
            if methods is None:
                continue
            sync_method = attrgetter(methods[0])(sync_client)
            async_method = attrgetter(methods[0])(async_client)
            assert callable(sync_method) and callable(async_method), operation
            assert not inspect.iscoroutinefunction(sync_method), operation
            is_async = inspect.iscoroutinefunction(async_method)
            is_async_stream = inspect.isasyncgenfunction(async_method) or methods[0].endswith(
                ".follow"
            )
            assert is_async or is_async_stream, operation
        asyncio.run(async_client.close())


# --- integrations --------------------------------------------------------------------


def test_integrations_are_stored_shown_without_their_secrets_and_deleted(client: Client):
    secret = "a-long-smtp-password-6789"
    created = client.integrations.create(
        "email", "Mail", {**EMAIL, "username": "me"}, {"password": secret}
    )
    got = client.integrations.get(created.id)
    listed = [integration.id for integration in client.integrations.list()]
    deleted = client.integrations.delete(created.id)

    assert created.id.startswith("int_") and created.type == "email"
    assert got.settings["host"] == "smtp.example.com" and got.name == "Mail"
    shown = got.secret("password")
    assert shown.set and shown.last4 == "6789" and secret not in str(got.raw)
    assert created.id in listed and deleted.deleted
    with pytest.raises(NotFoundError):
        client.integrations.get(created.id)


def test_a_refused_integration_names_the_field(client: Client):
    with pytest.raises(BadRequestError) as refused:
        client.integrations.create("email", "Mail", {"from_address": "a@example.com"})

    assert refused.value.path == "settings.host"


# --- renders: metadata, exports, dry runs, deleting the files ---------------------


def test_metadata_and_exports_travel_with_the_job_and_find_it(sandbox: Client):
    mail = sandbox.integrations.create("email", "Mail", EMAIL)
    exports = [{"type": "email", "integration_id": mail.id, "to": ["a@example.com"]}]
    events = []
    job = sandbox.render(
        TINY_SCRIPT,
        metadata={"order": 42, "customer": "acme"},
        exports=exports,
        on_event=events.append,
        timeout=60,
    )
    other = sandbox.render(TINY_SCRIPT, metadata={"order": 7}, timeout=60)

    assert job.metadata == {"order": 42, "customer": "acme"}
    assert [export.type for export in job.exports] == ["email"]
    assert events[-1].metadata == job.metadata
    assert listed_by_metadata(sandbox, "order", 42) == [job.job_id]
    assert listed_by_metadata(sandbox, "customer", "acme") == [job.job_id]
    assert other.job_id not in listed_by_metadata(sandbox, "order", 42)
    with pytest.raises(ValueError):
        sandbox.jobs.list(metadata={"order": 42, "customer": "acme"})


def test_following_with_exports_goes_on_until_they_settle(sandbox: Client):
    mail = sandbox.integrations.create("email", "Mail", EMAIL)
    export = {"type": "email", "integration_id": mail.id, "to": ["a@example.com"]}
    submission = sandbox.renders.create(TINY_SCRIPT, exports=[export])

    events = list(sandbox.jobs.follow(submission.job_id, exports=True, timeout=60))
    job = sandbox.jobs.get(submission.job_id)

    names = [event.name for event in events]
    assert "complete" in names and names[-1] == "export"
    assert isinstance(events[-1], ExportEvent) and events[-1].index == 0
    assert events[-1].status == "skipped" and events[-1].error["code"] == "SANDBOX_SKIPPED"
    assert job.exports[0].status == "skipped" and job.exports[0].error.code == "SANDBOX_SKIPPED"


def test_a_dry_run_with_an_unknown_integration_is_refused_and_charges_nothing(client: Client):
    export = {"type": "email", "integration_id": "int_" + "0" * 32, "to": ["a@example.com"]}
    with pytest.raises(BadRequestError) as refused:
        client.renders.quote(TINY_SCRIPT, exports=[export])
    quote = client.renders.quote(TINY_SCRIPT, metadata={"order": 1})

    assert refused.value.path == "exports.0.integration_id"
    assert quote.valid and quote.estimated_credits == 1 and quote.credits_remaining == 999
    assert client.credits.balance().credits == 1000
    assert client.jobs.list().total == 0


def test_deleting_a_jobs_output_keeps_the_job_and_its_link_answers_gone(client: Client, tmp_path):
    queued = client.renders.create({**TINY_SCRIPT, "scenes": [{"duration": 300}]})
    with pytest.raises(ConflictError) as unfinished:
        client.jobs.delete_output(queued.job_id)
    client.jobs.cancel(queued.job_id)
    job = client.render(TINY_SCRIPT, timeout=120)

    deleted = client.jobs.delete_output(job)
    again = client.jobs.delete_output(job)
    after = client.jobs.get(job)

    assert unfinished.value.code == "JOB_NOT_COMPLETED"
    assert deleted.deleted and deleted.job_id == job.job_id and again.deleted
    assert after.status == "completed" and after.output_deleted_at == deleted.output_deleted_at
    with pytest.raises(GoneError) as gone:
        client.jobs.download(job, tmp_path / "gone.mp4")
    assert gone.value.code == "OUTPUT_DELETED" and not (tmp_path / "gone.mp4").exists()


# --- previews ---------------------------------------------------------------------------


def test_a_preview_is_drawn_watched_priced_rendered_and_deleted(client: Client, tmp_path):
    created = client.previews.create(TWO_SCENES, metadata={"draft": True})
    events = []
    preview = client.previews.wait(created, on_event=events.append, timeout=120)
    proxy = client.previews.download(preview, tmp_path / "proxy.mp4")
    page = client.previews.page(preview)
    quote = client.previews.quote(preview)
    balance_after_preview = client.credits.balance().credits
    submission = client.previews.render(preview, metadata={"draft": False})
    job = client.jobs.wait(submission.job_id, timeout=120)
    deleted = client.previews.delete(preview)

    assert created.status == "queued" and preview.status == "completed"
    assert isinstance(events[-1], PreviewCompleteEvent)
    assert events[-1].proxy_uri == preview.proxy_uri
    assert any(isinstance(event, StoryboardEvent) for event in events)
    assert all(isinstance(e, ProgressEvent | StoryboardEvent) for e in events[:-1])
    assert [frame.kind for frame in preview.storyboard] == ["scene", "scene"]
    assert preview.proxy is not None and max(preview.proxy.width, preview.proxy.height) <= 512
    video = next(s for s in ffprobe(proxy)["streams"] if s["codec_type"] == "video")
    assert (int(video["width"]), int(video["height"])) == (
        preview.proxy.width,
        preview.proxy.height,
    )
    assert "<video" in page and preview.proxy_uri.rsplit("/", 1)[-1] in page
    assert balance_after_preview == 1000  # the preview itself is free
    assert quote.valid and quote.estimated_credits == preview.estimated_credits == 1
    assert job.status == "completed" and job.metadata == {"draft": False}
    origin = client.jobs.history(job).events[0].data["origin"]
    assert origin["channel"] == "preview" and origin["preview_id"] == preview.preview_id
    assert client.credits.balance().credits == 1000 - 1
    assert deleted.deleted
    with pytest.raises(NotFoundError):
        client.previews.get(preview)


def test_a_template_is_previewed_with_its_variables(sandbox: Client):
    script = {**TINY_SCRIPT, "scenes": [{"duration": "{{seconds}}", "background": "#00FF00"}]}
    template = sandbox.templates.create("Teaser", script)

    created = sandbox.previews.create_from_template(template.id, {"seconds": 2})
    with pytest.raises(BadRequestError) as missing:
        sandbox.previews.create_from_template(template.id, {})

    assert created.duration_seconds == 2 and created.origin["template_id"] == template.id
    assert missing.value.code == "VALIDATION_ERROR"
    sandbox.previews.delete(created)


def test_the_async_client_covers_previews_integrations_and_output_deletion(
    server: LiveServer, account
):
    async def scenario() -> tuple:
        async with AsyncClient(account.test_api_key, base_url=server.url) as client:
            mail = await client.integrations.create("email", "Mail", EMAIL)
            listed = await client.integrations.list()
            preview = await client.previews.create(TINY_SCRIPT)
            events = []
            drawn = await client.previews.wait(preview, on_event=events.append, timeout=120)
            submission = await client.previews.render(drawn, metadata={"via": "async"})
            job: Job = await client.jobs.wait(submission.job_id, timeout=60)
            deleted = await client.jobs.delete_output(job)
            await client.integrations.delete(mail.id)
            return mail, listed, drawn, events, job, deleted

    mail, listed, drawn, events, job, deleted = asyncio.run(scenario())

    assert mail.id in [integration.id for integration in listed]
    assert drawn.status == "completed" and not isinstance(events[-1], ErrorEvent)
    assert job.status == "completed" and job.metadata == {"via": "async"}
    assert deleted.deleted and deleted.job_id == job.job_id


# --- assets -------------------------------------------------------------------------------


def test_assets_upload_with_progress_list_read_and_delete(client: Client, tmp_path):
    image = tmp_path / "logo.png"
    image.write_bytes(upload_files.png())
    sound = upload_files.wav()
    progress: list[tuple[int, int]] = []

    uploaded = client.assets.upload(
        image, ("voice.wav", sound), on_progress=lambda sent, total: progress.append((sent, total))
    )
    again = client.assets.upload(image)
    page = client.assets.list(type="image")
    every = [asset.id for asset in client.assets.iter()]
    got = client.assets.get(uploaded[0])
    saved = client.assets.download(uploaded[1], tmp_path / "voice.wav")
    deleted = client.assets.delete(uploaded[0])

    total = image.stat().st_size + len(sound)
    assert [asset.type for asset in uploaded] == ["image", "audio"]
    assert uploaded[0].name == "logo.png" and uploaded[0].width == 32
    assert progress[-1] == (total, total) and all(t == total for _, t in progress)
    assert [sent for sent, _ in progress] == sorted(sent for sent, _ in progress)
    assert again[0].id == uploaded[0].id  # the same content is the same asset
    assert [asset.id for asset in page.assets] == [uploaded[0].id]
    assert page.storage.used_bytes == total and sorted(every) == sorted(a.id for a in uploaded)
    assert got.sha256 == uploaded[0].sha256 and saved.read_bytes() == sound
    assert deleted.deleted
    with pytest.raises(NotFoundError):
        client.assets.get(uploaded[0])


def test_a_file_that_is_not_media_is_refused_by_name(client: Client):
    with pytest.raises(BadRequestError) as refused:
        client.assets.upload(("notes.mp4", upload_files.TEXT))

    assert refused.value.code == "UNSUPPORTED_FILE_TYPE"


def test_the_async_client_uploads_and_renders_with_an_asset(server: LiveServer, account):
    async def scenario():
        async with AsyncClient(account.test_api_key, base_url=server.url) as client:
            (image,) = await client.assets.upload(("bg.png", upload_files.png(320, 240)))
            script = {
                **TINY_SCRIPT,
                "scenes": [{"duration": 1, "background": {"type": "image", "src": image.id}}],
            }
            job = await client.render(script, timeout=60)
            listed = await client.assets.list()
            return image, job, listed

    image, job, listed = asyncio.run(scenario())

    assert image.id.startswith("asset_") and job.status == "completed"
    assert [asset.id for asset in listed.assets] == [image.id]
