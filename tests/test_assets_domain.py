"""Assets in the domain: quotas on the account, one asset per content, holds by jobs,
and the checks of the assets a script names. The application runs on the in-memory
event store (eventsourcing's own, not a stand-in)."""

from __future__ import annotations

import uuid

import pytest

from phantomflow.domain.application import PhantomFlow
from phantomflow.domain.asset_commands import NewAsset
from phantomflow.domain.assets import (
    AssetInUse,
    AssetNotFound,
    AssetReferenceInvalid,
    StorageLimitExceeded,
    asset_uses,
    display_name,
    parse_asset_ref,
)
from phantomflow.domain.plans import MB
from phantomflow.domain.script import MovieScript


@pytest.fixture
def app() -> PhantomFlow:
    return PhantomFlow(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def upload(sha: str = "a", size: int = 1000, type: str = "image") -> NewAsset:
    asset_id = uuid.uuid4()
    return NewAsset(
        asset_id, f"{type}.bin", sha * 64, size, f"assets/x/{asset_id}", type, "x/y", 10, 10, None
    )


def image_script(ref: str, **element: object) -> MovieScript:
    return MovieScript.from_dict(
        {
            "scenes": [
                {
                    "duration": 1,
                    "background": "#000000",
                    "elements": [{"type": "image", "src": ref, **element}],
                }
            ]
        }
    )


def test_an_upload_is_recorded_as_an_asset_and_its_bytes_counted_on_the_account(app):
    account = app.open_account("free", 10).account_id
    (asset,), position = app.record_assets(account, False, [upload(size=1234)])
    assert position is not None
    assert parse_asset_ref(asset.ref) == asset.id
    assert (asset.type, asset.size, asset.deleted) == ("image", 1234, False)
    assert app.storage_use(account).used_bytes == 1234
    assert app.storage_use(account).limit_bytes == 512 * MB


def test_the_same_content_twice_is_one_asset_counted_once(app):
    account = app.open_account("free", 10).account_id
    (first,), _ = app.record_assets(account, False, [upload()])
    (again,), position = app.record_assets(account, False, [upload()])
    both, _ = app.record_assets(account, False, [upload("b"), upload("b")])
    assert again.id == first.id and position is None
    assert both[0].id == both[1].id
    assert app.storage_use(account).used_bytes == 2000


def test_files_over_the_quota_are_refused_together_and_nothing_is_recorded(app):
    account = app.open_account("free", 10).account_id
    app.record_assets(account, False, [upload("a", 500 * MB)])
    with pytest.raises(StorageLimitExceeded) as refused:
        app.record_assets(account, False, [upload("b", 6 * MB), upload("c", 7 * MB)])
    assert refused.value.used_bytes == 500 * MB
    assert refused.value.limit_bytes == 512 * MB
    assert refused.value.required_bytes == 13 * MB
    assert app.storage_use(account).used_bytes == 500 * MB
    assert app.stored_asset(account, False, "b" * 64) is None


def test_an_enterprise_account_has_its_own_storage_limit(app):
    account = app.open_account("enterprise", 10).account_id
    app.change_plan(account, "enterprise", storage_bytes=3 * MB)
    with pytest.raises(StorageLimitExceeded):
        app.record_assets(account, False, [upload(size=4 * MB)])


def test_assets_of_sandbox_and_live_keys_are_apart(app):
    account = app.open_account("free", 10).account_id
    (live,), _ = app.record_assets(account, False, [upload()])
    (sandbox,), _ = app.record_assets(account, True, [upload()])
    assert live.id != sandbox.id
    with pytest.raises(AssetNotFound):
        app.get_asset(account, True, live.ref)
    assert live.key != sandbox.key  # each its own file
    app.delete_asset(account, True, sandbox.ref)
    assert app.get_asset(account, False, live.ref).deleted is False


def test_an_asset_held_by_a_queued_job_cannot_be_deleted_until_the_job_ends(app):
    account = app.open_account("free", 10).account_id
    (asset,), _ = app.record_assets(account, False, [upload()])
    job = app.submit_render(account, image_script(asset.ref), None, {}, None).job_id
    with pytest.raises(AssetInUse) as refused:
        app.delete_asset(account, False, asset.ref)
    assert refused.value.job_ids == [str(job)]
    app.cancel_job(job)
    deleted, _ = app.delete_asset(account, False, asset.ref)
    assert deleted.deleted
    assert app.storage_use(account).used_bytes == 0


def test_a_sandbox_job_holds_its_assets_too(app):
    account = app.open_account("free", 10).account_id
    (asset,), _ = app.record_assets(account, True, [upload()])
    job = app.submit_render(account, image_script(asset.ref), None, {}, None, sandbox=True)
    with pytest.raises(AssetInUse):
        app.delete_asset(account, True, asset.ref)
    app.fail_job(job.job_id, "X", "failed")
    app.delete_asset(account, True, asset.ref)


def test_a_script_naming_a_deleted_foreign_or_wrong_kind_asset_is_refused_at_its_path(app):
    account = app.open_account("free", 10).account_id
    other = app.open_account("free", 10).account_id
    (image,), _ = app.record_assets(account, False, [upload("a")])
    (audio,), _ = app.record_assets(account, False, [upload("b", type="audio")])
    (foreign,), _ = app.record_assets(other, False, [upload("c")])
    (gone,), _ = app.record_assets(account, False, [upload("d")])
    app.delete_asset(account, False, gone.ref)
    for ref, words in (
        (audio.ref, "is an audio"),
        (foreign.ref, "No asset"),
        (gone.ref, "No asset"),
    ):
        with pytest.raises(AssetReferenceInvalid) as refused:
            app.submit_render(account, image_script(ref), None, {}, None)
        assert refused.value.path == "scenes.0.elements.0.src"
        assert words in refused.value.message
        with pytest.raises(AssetReferenceInvalid):
            app.quote_render(account, image_script(ref))
    unknown = "asset_" + uuid.uuid4().hex
    with pytest.raises(AssetReferenceInvalid):
        app.submit_render(account, image_script(unknown), None, {}, None)
    assert app.submit_render(account, image_script(image.ref), None, {}, None).status == "queued"


def test_a_text_element_names_a_font_asset_by_font_family():
    ref = "asset_" + "f" * 32
    script = MovieScript.from_dict(
        {
            "scenes": [
                {
                    "duration": 1,
                    "background": "#000000",
                    "elements": [{"type": "text", "text": "Hi", "font_family": ref}],
                }
            ]
        }
    )
    (use,) = asset_uses(script)
    assert (use.ref, use.type, use.path) == (ref, "font", "scenes.0.elements.0.font_family")


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\logo.png", "logo.png"),
        ("bad\x00name\r\n.mp4", "bad_name_.mp4"),
        ("", "file"),
        ("..", "file"),
        ("x" * 1000, "x" * 255),
    ],
)
def test_a_file_name_is_kept_only_as_a_safe_display_name(raw, kept):
    assert display_name(raw) == kept
