"""The movie script's validation and its published JSON Schema: one source, one verdict.

The property test generates scripts, valid and broken, and checks that the API's
validation (`load_render_request`, what `POST /api/render` runs) and the JSON Schema
served by `GET /api/render/schema` agree on each: the same verdict, and the API's
failing path lies where the JSON Schema also finds a fault. The only rules JSON Schema
cannot say are the cross-field rules the schema publishes in words
(`x-phantomflow-cross-field-rules`); the oracle applies exactly those.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from marshmallow import ValidationError

from phantomflow.api.openapi import render_json_schema
from phantomflow.api.schemas import CROSS_FIELD_RULES, first_error, load_render_request
from phantomflow.domain.pricing import estimate
from phantomflow.domain.script import LIMITS, TRANSITIONS, MovieScript

SCHEMA = render_json_schema()
VALIDATOR = Draft202012Validator(SCHEMA)


def api_verdict(script: Any) -> tuple[bool, str, str]:
    try:
        load_render_request(script)
    except ValidationError as error:
        path, message = first_error(error.messages)
        return False, path, message
    return True, "", ""


def cross_field_rules_hold(script: dict[str, Any]) -> bool:
    """The published cross-field rules (CROSS_FIELD_RULES), for a schema-valid script."""
    scenes = script["scenes"]
    total = 0.0
    for number, scene in enumerate(scenes):
        total += scene["duration"]
        transition = scene.get("transition")
        if transition is None:
            continue
        if number == len(scenes) - 1:
            return False
        duration = transition.get("duration", 0.5)
        if duration >= min(scene["duration"], scenes[number + 1]["duration"]):
            return False
        total -= duration
    if total > LIMITS.max_total_duration:
        return False
    urls = set()
    for scene in scenes:
        background = scene.get("background")
        if isinstance(background, dict):
            urls.add(background["src"])
        for element in scene.get("elements", []):
            if "src" in element:
                urls.add(element["src"])
            end = element.get("trim_end")
            if end is not None and end <= element.get("trim_start", 0):
                return False
    if script.get("soundtrack"):
        urls.add(script["soundtrack"]["src"])
    return len(urls) <= LIMITS.max_media_sources


def schema_error_paths(script: Any) -> list[str]:
    return [
        ".".join(str(part) for part in error.absolute_path)
        for error in VALIDATOR.iter_errors(script)
    ]


# ---------------------------------------------------------------- strategies

colours = st.one_of(
    st.sampled_from(["#000", "#FFFFFF", "#12345678", "#abcdef"]),
    st.text("0123456789abcdefABCDEF", min_size=6, max_size=6).map(lambda s: f"#{s}"),
)
urls = st.sampled_from(
    [
        "http://media.test/a.png",
        "https://cdn.example.com/clip.mp4?sig=abc&x=1",
        "http://127.0.0.1:8080/tone.wav",
        "https://example.com/a%20b/c#frag",
    ]
)
seconds = st.floats(min_value=0, max_value=20, allow_nan=False)
durations = st.floats(min_value=0.5, max_value=60, allow_nan=False)
texts = st.text(min_size=1, max_size=40)


def timed() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "start": seconds,
        "duration": st.one_of(st.none(), durations),
        "fade_in": seconds,
        "fade_out": seconds,
    }


text_elements = st.fixed_dictionaries(
    {"type": st.just("text"), "text": texts},
    optional={
        **timed(),
        "font_family": st.sampled_from(["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono"]),
        "font_weight": st.sampled_from(["normal", "bold"]),
        "font_size": st.integers(8, 400),
        "color": colours,
        "background_color": st.one_of(st.none(), colours),
        "padding": st.integers(0, 200),
        "align": st.sampled_from(["left", "center", "right"]),
        "position": st.sampled_from(["center", "top", "bottom-right"]),
        "x": st.one_of(st.none(), st.integers(-100, 4000)),
        "y": st.one_of(st.none(), st.integers(-100, 4000)),
        "max_width": st.one_of(st.none(), st.integers(1, 4000)),
    },
)
box = {
    "x": st.integers(-100, 2000),
    "y": st.integers(-100, 2000),
    "width": st.one_of(st.none(), st.integers(1, 2000)),
    "height": st.one_of(st.none(), st.integers(1, 2000)),
    "fit": st.sampled_from(["contain", "cover", "fill"]),
    "opacity": st.floats(0, 1),
}
image_elements = st.fixed_dictionaries(
    {"type": st.just("image"), "src": urls}, optional={**timed(), **box}
)
video_elements = st.fixed_dictionaries(
    {"type": st.just("video"), "src": urls},
    optional={
        **timed(),
        **box,
        "trim_start": st.just(0),
        "trim_end": st.one_of(st.none(), durations),
        "volume": st.floats(0, 4),
        "muted": st.booleans(),
        "loop": st.booleans(),
    },
)
audio_elements = st.fixed_dictionaries(
    {"type": st.just("audio"), "src": urls},
    optional={**timed(), "volume": st.floats(0, 4), "trim_start": st.just(0)},
)
backgrounds = st.one_of(
    colours,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["image", "video"]), "src": urls},
        optional={
            "fit": st.sampled_from(["contain", "cover", "fill"]),
            "color": colours,
            "loop": st.booleans(),
        },
    ),
)
transitions = st.fixed_dictionaries(
    {}, optional={"type": st.sampled_from(TRANSITIONS), "duration": st.floats(0.1, 0.4)}
)
scenes = st.fixed_dictionaries(
    {"duration": durations},
    optional={
        "background": backgrounds,
        "elements": st.lists(
            st.one_of(text_elements, image_elements, video_elements, audio_elements), max_size=3
        ),
        "transition": st.one_of(st.none(), transitions),
    },
)
scripts = st.fixed_dictionaries(
    {"scenes": st.lists(scenes, min_size=1, max_size=3)},
    optional={
        "width": st.integers(8, 2000).map(lambda n: n * 2),
        "height": st.integers(8, 1000).map(lambda n: n * 2),
        "fps": st.floats(1, 60),
        "quality": st.sampled_from(["low", "medium", "high"]),
        "webhook_uri": st.one_of(st.none(), urls),
        "exports": st.just([]),
        "soundtrack": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"src": urls}, optional={"volume": st.floats(0, 4), "fade_in": seconds}
            ),
        ),
    },
)

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
    ),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)


def _edges_of(node: dict[str, Any]) -> list[Any]:
    """Values on and just past the limits one property's schema states, and its enum."""
    edges: list[Any] = []
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in node:
            edges.extend(node[key] + delta for delta in (0, -1, 1, -0.5, 0.5, 1e-6, -1e-6))
    if "multipleOf" in node:
        edges.extend(node.get("minimum", 0) + n for n in (1, 3, 4))
    if "maxLength" in node:
        edges.extend(["x" * node["maxLength"], "x" * (node["maxLength"] + 1)])
    edges.extend(node.get("enum", []))
    return edges


def _resolved(prop: dict[str, Any]) -> dict[str, Any]:
    """A property's schema, with the named rule it refers to (`WebhookUri`) merged in."""
    if "$ref" not in prop:
        return prop
    return {**SCHEMA["$defs"][prop["$ref"].removeprefix("#/$defs/")], **prop}


def _edges_by_property(schema: dict[str, Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for node in _nodes(schema):
        for name, prop in node.get("properties", {}).items():
            found.setdefault(name, []).extend(_edges_of(_resolved(prop)))
    return found


def _nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(n for value in node.values() for n in _nodes(value))]
    if isinstance(node, list):
        return [n for value in node for n in _nodes(value)]
    return []


# Values on and just past the limits, odd sizes, and strings that are almost right.
EDGES_BY_PROPERTY = _edges_by_property(SCHEMA)
edge_values = st.sampled_from(
    [17, 321, 2**70, 1e300, -1e300, 5.0, "", "#FFF", "#GGGGGG",
     "#FFFFFF\n", "red", "http://a.test/x", "ftp://a.test/x", "http://u@a.test/", "http:// a",
     "https://a.test/\n", "dissolve", "middle", "Comic Sans", True, False, None, [], {}]
)  # fmt: skip


def locations(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a JSON value."""
    found = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(locations(value, (*here, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(locations(value, (*here, index)))
    return found


def _at(node: Any, where: tuple[Any, ...]) -> Any:
    for step in where:
        node = node[step]
    return node


@st.composite
def scripts_valid_and_broken(draw: st.DrawFn) -> dict[str, Any]:
    script = draw(scripts)
    for _ in range(draw(st.integers(0, 2))):
        # Mostly leaves: that is where the limits are.
        leaves = [
            here for here in locations(script) if not isinstance(_at(script, here), dict | list)
        ]
        where = draw(st.sampled_from(leaves or locations(script)))
        parent: Any = script
        for step in where[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "edge", "edge", "edge", "delete", "add"]))
        if not where:
            continue
        key = where[-1]
        if action == "delete" and isinstance(parent, dict):
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["durration", "colour", "extra"]))] = 1
        elif action == "edge":
            own = EDGES_BY_PROPERTY.get(key, []) if isinstance(key, str) else []
            pool = st.sampled_from(own) if own and draw(st.integers(0, 3)) else edge_values
            parent[key] = copy.deepcopy(draw(pool))
        else:
            parent[key] = draw(json_values)
    return script


# ---------------------------------------------------------------- tests


def test_the_published_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["x-phantomflow-cross-field-rules"] == list(CROSS_FIELD_RULES)
    # The $refs all resolve inside the document.
    refs = {value for value in _walk(SCHEMA) if isinstance(value, str) and value.startswith("#/")}
    assert refs and all(ref.removeprefix("#/$defs/") in SCHEMA["$defs"] for ref in refs)


def _walk(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _walk(value)]
    if isinstance(node, list):
        return [v for value in node for v in _walk(value)]
    return [node]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scripts_valid_and_broken())
def test_the_api_and_the_published_json_schema_agree_on_every_script(script):
    accepted, path, message = api_verdict(script)
    schema_ok = VALIDATOR.is_valid(script)

    assert accepted == (schema_ok and cross_field_rules_hold(script)), (path, message)
    if not schema_ok:
        # The API names a field the JSON Schema also finds at fault (or inside it).
        paths = schema_error_paths(script)
        assert any(path == p or path.startswith(f"{p}.") or not p for p in paths), (
            path,
            paths,
        )
    if accepted:
        # What the API accepts, the domain can build and price.
        normalised = load_render_request(script).script
        assert MovieScript.from_dict(normalised).to_dict() == normalised
        assert estimate(MovieScript.from_dict(normalised)) >= 1


# A valid script holding one object of each kind, and where to find each in it.
BASE: dict[str, Any] = {
    "scenes": [
        {
            "duration": 10,
            "background": {"type": "image", "src": "http://a.test/bg.png"},
            "elements": [
                {"type": "text", "text": "hi"},
                {"type": "image", "src": "http://a.test/i.png"},
                {"type": "video", "src": "http://a.test/v.mp4"},
                {"type": "audio", "src": "http://a.test/a.mp3"},
            ],
            "transition": {"type": "fade", "duration": 1},
        },
        {"duration": 10},
    ],
    "soundtrack": {"src": "http://a.test/music.mp3"},
    "exports": [
        {"type": "s3", "integration_id": "int_" + "0" * 32, "prefix": "a/b"},
        {"type": "ftp", "integration_id": "int_" + "1" * 32, "path": "in"},
        {"type": "sftp", "integration_id": "int_" + "2" * 32, "filename": "v-{job_id}.mp4"},
        {"type": "email", "integration_id": "int_" + "3" * 32, "to": ["a@b.test"]},
        {"type": "youtube", "integration_id": "int_" + "4" * 32, "title": "T", "tags": ["x"]},
    ],
}
OBJECTS: dict[str, tuple[Any, ...]] = {
    "RenderRequest": (),
    "Scene": ("scenes", 1),
    "MediaBackground": ("scenes", 0, "background"),
    "TextElement": ("scenes", 0, "elements", 0),
    "ImageElement": ("scenes", 0, "elements", 1),
    "VideoElement": ("scenes", 0, "elements", 2),
    "AudioElement": ("scenes", 0, "elements", 3),
    "Transition": ("scenes", 0, "transition"),
    "Soundtrack": ("soundtrack",),
    "S3Target": ("exports", 0),
    "FtpTarget": ("exports", 1),
    "SftpTarget": ("exports", 2),
    "EmailTarget": ("exports", 3),
    "YouTubeTarget": ("exports", 4),
}
OTHER_VALUES = [None, True, "5", 5, 5.5, [], {}, "#FFF", "http://a.test/x"]


def _property_cases() -> list[tuple[str, str, Any]]:
    cases = []
    for name, where in OBJECTS.items():
        node = SCHEMA if name == "RenderRequest" else SCHEMA["$defs"][name]
        assert where is not None
        for prop, prop_schema in node["properties"].items():
            for value in [*_edges_of(_resolved(prop_schema)), *OTHER_VALUES]:
                cases.append((name, prop, value))
    return cases


def test_every_limit_and_choice_the_schema_states_is_the_apis_own():
    """Each property of each object, on and just past each of its limits, with every
    enum value and a value of every other JSON type: the same verdict both ways."""
    objects = {name for name, node in SCHEMA["$defs"].items() if node.get("type") == "object"}
    assert set(OBJECTS) == {*objects, "RenderRequest"}
    assert api_verdict(BASE)[0] and VALIDATOR.is_valid(BASE)
    disagreements = []
    cases = _property_cases()
    for name, prop, value in cases:
        script = copy.deepcopy(BASE)
        _at(script, OBJECTS[name])[prop] = value
        accepted = api_verdict(script)[0]
        expected = VALIDATOR.is_valid(script) and cross_field_rules_hold(script)
        if accepted != expected:
            disagreements.append((name, prop, value, accepted))
    assert not disagreements
    assert len(cases) > 400


def test_the_normalised_script_is_itself_a_valid_request():
    full, *_ = load_render_request(
        {
            "scenes": [
                {
                    "duration": 2,
                    "background": {"type": "video", "src": "https://a.test/v.mp4"},
                    "elements": [
                        {"type": "text", "text": "hi"},
                        {"type": "image", "src": "https://a.test/i.png"},
                        {"type": "video", "src": "https://a.test/v.mp4", "trim_end": 3},
                        {"type": "audio", "src": "https://a.test/a.mp3"},
                    ],
                    "transition": {"type": "slideleft"},
                },
                {"duration": 1},
            ],
            "soundtrack": {"src": "https://a.test/music.mp3"},
        }
    )
    assert VALIDATOR.is_valid(full)
    assert load_render_request(full)[0] == full


SCENE = {"duration": 2, "elements": []}


@pytest.mark.parametrize(
    ("script", "path", "message"),
    [
        ({"scenes": [{**SCENE, "transition": {"duration": 2}}, SCENE]},
         "scenes.0.transition.duration", "Must be shorter than this scene and the next one"),
        ({"scenes": [SCENE, {**SCENE, "transition": {}}]},
         "scenes.1.transition", "The last scene has no next scene"),
        ({"scenes": [{"duration": 300, "transition": {"duration": 1}}, {"duration": 300},
                     {"duration": 1.5}]},
         "scenes", "Total duration 600.5 s is over the limit of 600 s"),
        ({"scenes": [{**SCENE, "elements": [{"type": "video", "src": "http://a.test/v",
                                             "trim_start": 3, "trim_end": 2}]}]},
         "scenes.0.elements.0.trim_end", "Must be more than trim_start"),
        ({"scenes": [{**SCENE, "elements": [{"type": "image", "src": f"http://a.test/{n}"}
                                            for n in range(20)]},
                     {**SCENE, "elements": [{"type": "audio", "src": "http://a.test/21"}]}]},
         "scenes.1.elements.0.src", "More than 20 different media URLs"),
    ],
)  # fmt: skip
def test_each_cross_field_rule_names_the_field_it_is_about(script, path, message):
    accepted, got_path, got_message = api_verdict(script)
    assert not accepted
    assert got_path == path
    assert message in got_message
    assert VALIDATOR.is_valid(script), "the JSON Schema cannot see this rule"


def test_transitions_overlap_scenes_so_the_movie_and_its_price_are_shorter():
    script, *_ = load_render_request(
        {
            "width": 1920,
            "height": 1080,
            "scenes": [{"duration": 3, "transition": {"duration": 1}}, {"duration": 3}],
        }
    )
    movie = MovieScript.from_dict(script)
    assert movie.duration == 5
    assert movie.scene_starts() == [0, 2]
    assert estimate(movie) == 5


def test_scripts_recorded_before_the_full_model_still_load():
    # The shape a Submitted event stored in the walking skeleton.
    old = {
        "width": 320,
        "height": 240,
        "fps": 15.0,
        "quality": "low",
        "scenes": [
            {
                "duration": 1.0,
                "background": "#FF0000",
                "elements": [
                    {
                        "type": "text",
                        "text": "Hello",
                        "font_size": 24,
                        "color": "#FFFFFF",
                        "position": "center",
                    }
                ],
            }
        ],
    }
    movie = MovieScript.from_dict(json.loads(json.dumps(old)))
    element = movie.scenes[0].elements[0]
    assert (element.text, element.font_size, element.font_family, element.start) == (
        "Hello",
        24,
        "DejaVu Sans",
        0,
    )
    assert movie.scenes[0].transition is None and movie.soundtrack is None
    assert movie.duration == 1.0
