"""The preview worker: a preview drawn once, failed with a reason, abandoned (and its files
deleted) when it is deleted while being drawn."""

from __future__ import annotations

from uuid import uuid4

import pytest

from phantomflow.api.bootstrap import Runtime, preview_service
from phantomflow.domain.previews import COMPLETED, FAILED, Preview
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT

pytestmark = pytest.mark.ffmpeg


def new_preview(runtime: Runtime, script: dict = TINY_SCRIPT) -> Preview:
    account = runtime.app.open_account(plan="pro", credits=0)
    return runtime.app.create_preview(
        account.account_id, MovieScript.from_dict(script), {"channel": "api"}
    )


def test_a_preview_is_drawn_once_storyboard_then_proxy(runtime: Runtime):
    preview = new_preview(runtime)
    service = preview_service(runtime)

    assert service.run(preview.id) == "completed"
    assert service.run(preview.id) == "already finished"
    assert service.run(uuid4()) == "unknown preview"

    drawn = runtime.app.get_preview(preview.id)
    assert drawn.status == COMPLETED
    names = [type(event).__name__ for event in runtime.app.events.get(preview.id)]
    assert names.index("StoryboardReady") < names.index("ProxyReady")
    assert names.count("Started") == 1
    assert drawn.locations
    for key in drawn.locations:
        found = runtime.storage.stat(key)
        assert found is not None and found.size > 0


def test_a_preview_that_cannot_be_drawn_fails_with_the_reason(runtime: Runtime):
    broken = {
        **TINY_SCRIPT,
        "scenes": [
            {"duration": 1, "background": {"type": "image", "src": "http://10.0.0.1/a.png"}}
        ],
    }
    preview = new_preview(runtime, broken)

    assert preview_service(runtime).run(preview.id) == "failed"

    failed = runtime.app.get_preview(preview.id)
    assert failed.status == FAILED and failed.error is not None
    assert failed.error["code"] == "RENDER_FAILED"
    assert failed.error["message"].startswith("scenes.0.background.src:")


def test_a_preview_deleted_while_it_is_drawn_is_abandoned_and_its_files_deleted(
    runtime: Runtime,
):
    preview = new_preview(runtime)
    app = runtime.app
    deleting = False

    def delete_once_the_storyboard_is_recorded() -> None:
        nonlocal deleting
        current = app.get_preview(preview.id)
        if deleting or not current.storyboard or current.deleted:
            return
        deleting = True
        app.delete_preview(preview.id)

    app.on_recorded(delete_once_the_storyboard_is_recorded)

    assert preview_service(runtime).run(preview.id) == "abandoned"

    gone = app.get_preview(preview.id)
    assert gone.deleted and gone.storyboard and gone.proxy is None
    assert gone.locations
    assert not any(runtime.preview_files.exists(key) for key in gone.locations)
