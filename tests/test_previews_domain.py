"""The Preview aggregate: its life from creation to expiry, every change an event."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from phantomflow.domain.previews import (
    COMPLETED,
    FAILED,
    LIFETIME,
    PROCESSING,
    QUEUED,
    IllegalPreviewTransition,
    Preview,
    parse_preview_ref,
    preview_ref,
)
from tests.conftest import TINY_SCRIPT

FRAMES = [{"scene": 0, "kind": "scene", "time": 0.5, "location": "previews/x/storyboard-01.jpg"}]


def new_preview() -> Preview:
    return Preview.create(
        uuid.uuid4(),
        TINY_SCRIPT,
        origin={"channel": "api"},
        webhook_uri=None,
        sandbox=False,
    )


def drawn(preview: Preview) -> Preview:
    preview.start("worker-1")
    preview.storyboard_drawn(FRAMES)
    preview.proxy_drawn("previews/x/proxy.mp4", 1.0, 320, 240, 15, 1234)
    return preview


def test_a_preview_is_queued_for_seven_days_behind_an_unguessable_viewer_token():
    preview = new_preview()
    assert (preview.status, preview.expires_at) == (QUEUED, preview.created_on + LIFETIME)
    assert timedelta(days=7) == LIFETIME
    assert len(preview.viewer_token) >= 43  # 256 bits, URL-safe
    assert new_preview().viewer_token != preview.viewer_token
    assert preview.matches_token(preview.viewer_token)
    token = preview.viewer_token
    assert not preview.matches_token(token[:-1] + ("B" if token.endswith("A") else "A"))


def test_its_public_id_is_prv_and_its_uuid_in_hex():
    preview = new_preview()
    assert preview.ref == "prv_" + preview.id.hex
    assert parse_preview_ref(preview_ref(preview.id)) == preview.id
    for other in ("tpl_" + preview.id.hex, "prv_" + preview.id.hex[:-1], str(preview.id)):
        assert parse_preview_ref(other) is None


def test_the_storyboard_comes_before_the_proxy_and_the_proxy_completes_it():
    preview = new_preview()
    preview.start("worker-1")
    with pytest.raises(IllegalPreviewTransition):
        preview.proxy_drawn("previews/x/proxy.mp4", 1.0, 320, 240, 15, 1234)
    preview.storyboard_drawn(FRAMES)
    assert (preview.status, preview.storyboard) == (PROCESSING, FRAMES)
    preview.proxy_drawn("previews/x/proxy.mp4", 1.0, 320, 240, 15, 1234)
    assert (preview.status, preview.progress) == (COMPLETED, 1.0)
    assert preview.locations == ["previews/x/storyboard-01.jpg", "previews/x/proxy.mp4"]
    names = [type(e).__name__ for e in preview.collect_events()]
    assert names == ["Created", "Started", "StoryboardReady", "ProxyReady"]


def test_nothing_is_drawn_on_a_preview_that_was_deleted_or_has_ended():
    deleted = new_preview()
    deleted.start("worker-1")
    deleted.delete()
    with pytest.raises(IllegalPreviewTransition):
        deleted.storyboard_drawn(FRAMES)
    with pytest.raises(IllegalPreviewTransition):
        deleted.report_progress(0.5, "storyboard")
    with pytest.raises(IllegalPreviewTransition):
        deleted.delete()

    failed = new_preview()
    failed.fail("RENDER_FAILED", "no such font")
    assert (failed.status, failed.error) == (
        FAILED,
        {"code": "RENDER_FAILED", "message": "no such font"},
    )
    with pytest.raises(IllegalPreviewTransition):
        failed.start("worker-1")
    with pytest.raises(IllegalPreviewTransition):
        drawn(new_preview()).fail("RENDER_FAILED", "too late")


def test_a_preview_whose_worker_went_quiet_is_taken_over_and_drawn_again():
    preview = new_preview()
    preview.start("worker-1")
    preview.storyboard_drawn(FRAMES)
    quiet_since = preview.modified_on
    with pytest.raises(IllegalPreviewTransition):
        preview.take_over("worker-2", now=quiet_since + timedelta(seconds=10), lease_seconds=60)
    preview.take_over("worker-2", now=quiet_since + timedelta(seconds=61), lease_seconds=60)
    assert (preview.worker, preview.attempts, preview.storyboard) == ("worker-2", 2, [])


def test_expiry_ends_a_preview_by_the_clock_and_is_recorded_once_with_its_files():
    preview = drawn(new_preview())
    created = preview.created_on
    assert preview.is_live(created + LIFETIME - timedelta(seconds=1))
    assert not preview.is_live(created + LIFETIME)
    preview.expire()
    assert not preview.is_live(created)
    expired = preview.collect_events()[-1]
    assert expired.files_deleted == ["previews/x/storyboard-01.jpg", "previews/x/proxy.mp4"]
    with pytest.raises(IllegalPreviewTransition):
        preview.expire()
    # A deleted preview expires too: that is when its files are made sure of.
    deleted = new_preview()
    deleted.delete()
    deleted.expire()
    assert deleted.deleted and deleted.expired
