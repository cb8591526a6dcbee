import json
import re
from pathlib import Path
from typing import Any

import pytest

from federation.nodeinfo import (
    NODEINFO_21_CONTENT_TYPE,
    NODEINFO_21_REL,
    nodeinfo_21,
    well_known_nodeinfo,
)

# The published schema, verbatim from jhass/nodeinfo (schemas/2.1/schema.json, CC0),
# served at http://nodeinfo.diaspora.software/ns/schema/2.1.
SCHEMA_PATH = Path(__file__).parent.parent / "data" / "nodeinfo-2.1.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def _document(**overrides: Any) -> dict[str, object]:
    arguments: dict[str, Any] = {
        "software_name": "coopnode",
        "software_version": "0.1.0",
        "repository": "https://code.example/coopnode",
        "homepage": "https://coopnode.example",
        "open_registrations": False,
        "users_total": 42,
        "users_active_month": 17,
        "users_active_halfyear": 30,
        "local_posts": 120,
        "metadata": {"nodeName": "Vélo Coop", "nodeDescription": "Bike delivery co-op"},
    }
    arguments.update(overrides)
    return nodeinfo_21(**arguments)


def _errors(instance: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Check ``instance`` against the draft-04 keywords the NodeInfo schema uses."""
    errors: list[str] = []
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
    }
    expected = schema.get("type")
    if expected is not None:
        ok = isinstance(instance, types[expected])
        if expected == "integer" and isinstance(instance, bool):
            ok = False
        if not ok:
            return [f"{path}: expected {expected}, got {type(instance).__name__}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} not in enum")
    if "pattern" in schema and not re.search(schema["pattern"], instance):
        errors.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if "minimum" in schema and instance < schema["minimum"]:
        errors.append(f"{path}: {instance!r} below minimum")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: too few items")
        for index, item in enumerate(instance):
            errors += _errors(item, schema.get("items", {}), f"{path}[{index}]")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                errors.append(f"{path}: missing {name}")
        if len(instance) < schema.get("minProperties", 0):
            errors.append(f"{path}: too few properties")
        for name, value in instance.items():
            if name in properties:
                errors += _errors(value, properties[name], f"{path}.{name}")
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}: unexpected property {name}")
    return errors


# --- discovery -------------------------------------------------------------------


def test_well_known_document_links_the_21_schema() -> None:
    assert well_known_nodeinfo("https://coop.example") == {
        "links": [
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": "https://coop.example/nodeinfo/2.1",
            }
        ]
    }


def test_well_known_document_tolerates_a_trailing_slash() -> None:
    links = well_known_nodeinfo("http://localhost:8001/")["links"]
    assert links == [{"rel": NODEINFO_21_REL, "href": "http://localhost:8001/nodeinfo/2.1"}]


def test_content_type_names_the_schema_profile() -> None:
    assert NODEINFO_21_CONTENT_TYPE == (
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    )


# --- the document ----------------------------------------------------------------


def test_document_has_the_expected_content() -> None:
    assert _document() == {
        "version": "2.1",
        "software": {
            "name": "coopnode",
            "version": "0.1.0",
            "repository": "https://code.example/coopnode",
            "homepage": "https://coopnode.example",
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {
            "users": {"total": 42, "activeMonth": 17, "activeHalfyear": 30},
            "localPosts": 120,
        },
        "metadata": {"nodeName": "Vélo Coop", "nodeDescription": "Bike delivery co-op"},
    }


def test_document_conforms_to_the_published_schema(schema: dict[str, Any]) -> None:
    document = json.loads(json.dumps(_document()))
    assert _errors(document, schema) == []


def test_document_conforms_to_the_schema_per_jsonschema(schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft4Validator.check_schema(schema)
    validator = jsonschema.Draft4Validator(schema)

    assert list(validator.iter_errors(json.loads(json.dumps(_document())))) == []
    hidden = _document(
        users_total=None, users_active_month=None, users_active_halfyear=None, local_posts=None
    )
    assert list(validator.iter_errors(hidden)) == []


def test_the_schema_check_catches_what_it_should(schema: dict[str, Any]) -> None:
    # The hand check above is only worth something if it fails on bad documents.
    document: dict[str, Any] = json.loads(json.dumps(_document()))
    document["software"]["name"] = "CoopNode"
    document["protocols"] = ["activitypub", "gopher"]
    document["usage"]["users"]["total"] = -1
    document["usage"]["users"]["verified"] = 3
    document["openRegistrations"] = "no"
    del document["services"]

    errors = _errors(document, schema)

    assert len(errors) == 6, errors


def test_usage_figures_may_be_hidden(schema: dict[str, Any]) -> None:
    document = _document(
        users_total=None, users_active_month=None, users_active_halfyear=None, local_posts=None
    )

    # FEP-0151: "users" itself stays, empty.
    assert document["usage"] == {"users": {}}
    assert _errors(document, schema) == []


def test_metadata_is_copied_not_shared() -> None:
    metadata: dict[str, object] = {"nodeName": "A"}
    document = _document(metadata=metadata)
    metadata["nodeName"] = "B"
    assert document["metadata"] == {"nodeName": "A"}


def test_open_registrations_is_a_json_boolean() -> None:
    assert _document(open_registrations=True)["openRegistrations"] is True


@pytest.mark.parametrize("name", ["CoopNode", "coop node", "coop_node", "", "coopnode\n", "cöop"])
def test_software_names_outside_the_schema_pattern_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="software name"):
        _document(software_name=name)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("users_total", -1),
        ("users_active_month", True),
        ("users_active_halfyear", 1.5),
        ("local_posts", "12"),
    ],
)
def test_counts_must_be_non_negative_integers(argument: str, value: object) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        _document(**{argument: value})
