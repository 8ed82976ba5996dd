"""The templates read model: follows template events, tracks its position, rebuilds identically."""

from __future__ import annotations

from phantomflow.projections.runner import FollowerRunner
from phantomflow.projections.templates import TABLE, TemplatesProjection, replay
from tests.test_templates_api import TINY_TEMPLATE

OTHER_SCRIPT = {"scenes": [{"duration": 2, "elements": [{"type": "text", "text": "{{who}}"}]}]}


def rows(runtime) -> list[tuple]:
    with runtime.views.read() as cursor:
        cursor.execute(f"SELECT template_id, owner_id, seq, doc FROM {TABLE} ORDER BY template_id")
        return cursor.fetchall()


def make_history(runtime) -> dict[str, str]:
    """Templates created, changed in each way, and deleted, for two accounts."""
    app = runtime.app
    owner = app.open_account(plan="pro", credits=10).account_id
    other = app.open_account(plan="pro", credits=10).account_id
    kept = app.create_template(owner, "Kept", TINY_TEMPLATE, False).template.id
    app.update_template(kept, owner, name="Kept, renamed")
    app.update_template(kept, owner, script=OTHER_SCRIPT, is_public=True)
    gone = app.create_template(owner, "Gone", TINY_TEMPLATE, True).template.id
    app.update_template(gone, owner, name="Going")
    app.delete_template(gone, owner)
    theirs = app.create_template(other, "Theirs", OTHER_SCRIPT, False).template.id
    return {"owner": str(owner), "other": str(other), "kept": kept, "theirs": theirs}


def test_the_read_model_shows_each_template_as_its_events_left_it(runtime):
    made = make_history(runtime)
    runtime.templates_runner.catch_up()
    owned = runtime.templates.owned_by(made["owner"])
    assert [(t["name"], t["is_public"], t["version"]) for t in owned] == [
        ("Kept, renamed", True, 3)
    ]
    row = runtime.templates.get(owned[0]["id"])
    assert row is not None and row.owner_id == made["owner"]
    assert (row.doc["script"], row.doc["variables"]) == (OTHER_SCRIPT, ["who"])
    assert row.doc["updated_at"] > row.doc["created_at"]
    assert [t["name"] for t in runtime.templates.owned_by(made["other"])] == ["Theirs"]


def test_a_template_folded_from_its_own_events_matches_its_read_model_row(runtime):
    made = make_history(runtime)
    runtime.templates_runner.catch_up()
    for name in ("kept", "theirs"):
        template_id = made[name]
        folded = replay(runtime.app.events.get(template_id))
        stored = runtime.templates.get("tpl_" + template_id.hex)
        assert folded is not None and stored is not None
        assert (folded.owner_id, folded.doc) == (stored.owner_id, stored.doc)


def test_rebuild_from_zero_writes_identical_rows(runtime):
    make_history(runtime)
    runtime.templates_runner.catch_up()
    before = rows(runtime)
    assert len(before) == 2
    runtime.templates_runner.rebuild()
    assert rows(runtime) == before


def test_one_event_at_a_time_gives_the_same_read_model_as_one_batch(runtime):
    make_history(runtime)
    make_history(runtime)
    FollowerRunner(runtime.app, runtime.views, TemplatesProjection(), batch_size=1).rebuild()
    in_small_batches = rows(runtime)
    runtime.templates_runner.rebuild()
    assert rows(runtime) == in_small_batches
    assert len(in_small_batches) == 4


def test_the_position_is_tracked_so_a_restarted_follower_continues_where_it_stopped(runtime):
    make_history(runtime)
    runtime.templates_runner.catch_up()
    assert runtime.templates_runner.position() == runtime.app.recorder.max_notification_id()
    again = FollowerRunner(runtime.app, runtime.views, TemplatesProjection())
    assert again.catch_up() == 0
