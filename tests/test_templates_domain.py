"""Templates in the domain: `{{variable}}` substitution, and the versioned Template aggregate."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.application import Application
from hypothesis import given
from hypothesis import strategies as st

from phantomflow.domain.substitution import MissingVariables, substitute, variables_of
from phantomflow.domain.templates import (
    InvalidTemplateName,
    NotTemplateOwner,
    Template,
    TemplateDeleted,
    TemplateNotFound,
    history,
    parse_template_ref,
    template_ref,
)

SCRIPT = {
    "width": 320,
    "height": 240,
    "scenes": [
        {
            "duration": "{{duration}}",
            "background": "{{ background }}",
            "elements": [
                {"type": "text", "text": "{{headline}}", "font_size": 24},
                {"type": "text", "text": "Save {{discount}} on {{headline}}!"},
            ],
        }
    ],
}


# --- substitution ----------------------------------------------------------------------


def test_a_whole_value_placeholder_takes_the_value_with_its_type():
    result = substitute(
        SCRIPT, {"duration": 2.5, "background": "#112233", "headline": "Sale", "discount": 50}
    )
    scene = result["scenes"][0]
    assert scene["duration"] == 2.5 and isinstance(scene["duration"], float)
    assert scene["background"] == "#112233"
    assert scene["elements"][0]["text"] == "Sale"


def test_a_placeholder_inside_text_takes_the_values_text():
    result = substitute(
        SCRIPT, {"duration": 1, "background": "#000", "headline": "Shoes", "discount": 50}
    )
    assert result["scenes"][0]["elements"][1]["text"] == "Save 50 on Shoes!"
    flags = substitute({"t": "on={{a}} x={{b}}"}, {"a": True, "b": 0.5})
    assert flags == {"t": "on=true x=0.5"}


def test_missing_variables_are_all_named_in_order_of_first_use():
    with pytest.raises(MissingVariables) as raised:
        substitute(SCRIPT, {"headline": "x"})
    assert raised.value.names == ["duration", "background", "discount"]
    assert "duration, background, discount" in str(raised.value)


def test_unknown_variables_are_ignored_and_the_template_is_left_unchanged():
    before = repr(SCRIPT)
    values = {"duration": 1, "background": "#000", "headline": "a", "discount": "b", "extra": 1}
    result = substitute(SCRIPT, values)
    assert repr(SCRIPT) == before
    assert "extra" not in repr(result)


def test_values_are_data_and_never_scanned_for_placeholders():
    result = substitute({"a": "{{x}}", "b": "say {{x}} and {{y}}"}, {"x": "{{y}}", "y": "{{x}}"})
    assert result == {"a": "{{y}}", "b": "say {{y}} and {{x}}"}


def test_only_well_formed_names_are_placeholders_and_keys_are_never_substituted():
    script = {"{{k}}": "{{ 1bad }} {{a-b}} {{}} {{ok}}"}
    assert variables_of(script) == ["ok"]
    assert substitute(script, {"ok": "yes", "k": "no"}) == {"{{k}}": "{{ 1bad }} {{a-b}} {{}} yes"}


texts = st.text(alphabet=st.sampled_from("ab{} _x1"), max_size=30)


@given(
    template=st.recursive(
        texts | st.integers(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=10,
    ),
    value=texts,
)
def test_after_substitution_the_only_placeholders_left_came_from_the_values(template, value):
    names = variables_of(template)
    result = substitute(template, dict.fromkeys(names, "V"))
    assert variables_of(result) == []
    # With a value that is itself a placeholder, nothing but that value's own appears.
    echoed = substitute(template, dict.fromkeys(names, "{{z}}"))
    assert set(variables_of(echoed)) <= {"z"}
    assert (variables_of(echoed) == ["z"]) == bool(names)


# --- the aggregate ---------------------------------------------------------------------


def new_template(owner: uuid.UUID | None = None, public: bool = False) -> Template:
    return Template.create(owner or uuid.uuid4(), "Promo", SCRIPT, public)


def test_template_refs_map_to_and_from_aggregate_ids():
    template = new_template()
    assert template.ref == "tpl_" + template.id.hex
    assert parse_template_ref(template.ref) == template.id
    assert template_ref(template.id) == template.ref
    for bad in ("", "tpl_", "tpl_xyz", template.ref.upper(), str(template.id), template.ref + "0"):
        assert parse_template_ref(bad) is None


def test_every_change_is_a_version_and_a_change_to_the_same_value_is_none():
    template = new_template()
    assert template.version == 1
    assert template.update(name="  Promo 2 ") is True
    assert template.update(is_public=False, name="Promo 2") is False
    assert template.update(script={"scenes": [{"duration": 1}]}, is_public=True) is True
    assert (template.version, template.name, template.is_public) == (3, "Promo 2", True)


def test_history_lists_each_version_with_what_it_changed():
    app: Application = Application()
    template = new_template()
    template.update(name="Second")
    template.update(is_public=True)
    template.delete()
    app.save(template)
    versions = history(list(app.events.get(template.id)))
    assert [(v.version, v.name, v.is_public, v.changed) for v in versions] == [
        (1, "Promo", False, ("name", "script", "is_public")),
        (2, "Second", False, ("name",)),
        (3, "Second", True, ("is_public",)),
    ]
    assert app.repository.get(template.id, version=1).name == "Promo"
    assert app.repository.get(template.id, version=2).script == SCRIPT


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_template_name_must_be_given_and_not_too_long(name):
    with pytest.raises(InvalidTemplateName):
        Template.create(uuid.uuid4(), name, SCRIPT, False)
    with pytest.raises(InvalidTemplateName):
        new_template().update(name=name)


def test_a_deleted_template_cannot_change_and_is_hidden_from_everyone():
    owner = uuid.uuid4()
    template = new_template(owner, public=True)
    template.delete()
    with pytest.raises(TemplateDeleted):
        template.update(name="again")
    with pytest.raises(TemplateDeleted):
        template.delete()
    for reader in (owner, uuid.uuid4()):
        assert not template.readable_by(reader)
        with pytest.raises(TemplateNotFound):
            template.check_changeable_by(reader)


def test_others_may_read_a_public_template_but_never_change_it():
    owner, other = uuid.uuid4(), uuid.uuid4()
    private, public = new_template(owner), new_template(owner, public=True)
    assert private.readable_by(owner) and not private.readable_by(other)
    assert public.readable_by(other)
    with pytest.raises(NotTemplateOwner):
        public.check_changeable_by(other)
    with pytest.raises(TemplateNotFound):
        private.check_changeable_by(other)
    public.check_changeable_by(owner)
