"""The checked-in schemas themselves: valid, never edited once published, and each new
version compatible with the consumers of every version before it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from .schemas import (
    ASYNCAPI,
    EVENTS,
    HERE,
    Version,
    breaks,
    digest,
    published,
    versions,
)

ALL = [v for folder in (EVENTS, ASYNCAPI) for vs in versions(folder).values() for v in vs]
# Messages a client sends: a new server must accept what old clients send. Everything
# else (events, replies, pushes) is read by consumers written against an older version.
CLIENT_SENT = {
    "request",
    "authRequest",
    "callRequest",
    "pingRequest",
    "subscribeRequest",
    "unsubscribeRequest",
}


def _id(version: Version) -> str:
    return version.label


@pytest.mark.parametrize("version", ALL, ids=_id)
def test_each_schema_is_a_valid_draft_2020_12_schema(version: Version) -> None:
    Draft202012Validator.check_schema(version.schema)
    assert version.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_published_versions_are_never_edited() -> None:
    lock = published()
    files = {str(v.path.relative_to(HERE)): v.path for v in ALL}
    unpublished = sorted(set(files) - set(lock))
    assert not unpublished, (
        f"add these to published.lock (and never edit them after): {unpublished}"
    )
    removed = sorted(set(lock) - set(files))
    assert not removed, f"published schemas must stay checked in: {removed}"
    edited = sorted(name for name, path in files.items() if digest(path) != lock[name])
    assert not edited, f"published schemas were edited; add a new v<N+1> instead: {edited}"


def _published_types() -> dict[str, set[str]]:
    """Each producer's event types, from the one table that maps its domain events."""
    from gatehouse.auth.admin.events import EVENT_TYPES
    from gatehouse.authors.service_layer.cloudevents import TABLE

    return {
        "authors": {mapping.type for mapping in TABLE.values()},
        "auth": set(EVENT_TYPES),
    }


def test_every_event_type_a_producer_publishes_has_a_schema() -> None:
    checked_in = set(versions(EVENTS))
    missing = {
        producer: sorted(types - checked_in)
        for producer, types in _published_types().items()
        if types - checked_in
    }
    assert not missing, f"check in events/<type>/v1.json (and published.lock) for {missing}"


def _pairs() -> list[tuple[Version, Version]]:
    """(older, newer) for every two versions of one message."""
    pairs = []
    for folder in (EVENTS, ASYNCAPI):
        for history in versions(folder).values():
            pairs += [(old, new) for i, new in enumerate(history) for old in history[:i]]
    return pairs


def test_every_new_version_keeps_the_consumers_of_the_older_ones() -> None:
    found: list[str] = []
    for old, new in _pairs():
        sent, accepted = (old, new) if old.name in CLIENT_SENT else (new, old)
        found += [
            f"{new.label} breaks {old.label}: {b}" for b in breaks(sent.schema, accepted.schema)
        ]
    assert not found, "\n".join(found)


# The check above only means something if it catches real breaks: these are the usual
# ones, applied to every checked-in event schema.


def _data(schema: dict[str, Any]) -> dict[str, Any]:
    data = schema["properties"]["data"]
    assert isinstance(data, dict)
    return data


def _drop_a_required_field(schema: dict[str, Any]) -> dict[str, Any]:
    data = _data(schema)
    gone = data["required"][0]
    data["required"].remove(gone)
    del data["properties"][gone]
    return schema


def _retype_a_field(schema: dict[str, Any]) -> dict[str, Any]:
    data = _data(schema)
    data["properties"][data["required"][0]] = {"type": "integer"}
    return schema


def _make_a_field_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    data = _data(schema)
    field = data["properties"][data["required"][0]]
    data["properties"][data["required"][0]] = {"anyOf": [field, {"type": "null"}]}
    return schema


def _stop_sending_the_sequence(schema: dict[str, Any]) -> dict[str, Any]:
    schema["required"].remove("sequence")
    return schema


def _add_an_optional_field(schema: dict[str, Any]) -> dict[str, Any]:
    _data(schema)["properties"]["nickname"] = {"type": "string"}
    return schema


def _add_a_required_field(schema: dict[str, Any]) -> dict[str, Any]:
    data = _data(schema)
    data["properties"]["born"] = {"type": "integer"}
    data["required"].append("born")
    return schema


BREAKING = [_drop_a_required_field, _retype_a_field, _make_a_field_nullable]
COMPATIBLE = [_add_an_optional_field, _add_a_required_field]
LATEST_EVENTS = [history[-1] for history in versions(EVENTS).values()]


@pytest.mark.parametrize(
    "change", [*BREAKING, _stop_sending_the_sequence], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("version", LATEST_EVENTS, ids=_id)
def test_the_check_finds_a_break(version: Version, change: Any) -> None:
    changed = change(copy.deepcopy(version.schema))
    assert breaks(changed, version.schema), f"{change.__name__} of {version.label} went unnoticed"


@pytest.mark.parametrize("change", COMPATIBLE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("version", LATEST_EVENTS, ids=_id)
def test_the_check_lets_a_compatible_change_through(version: Version, change: Any) -> None:
    changed = change(copy.deepcopy(version.schema))
    assert breaks(changed, version.schema) == []


def test_a_server_must_keep_accepting_what_old_clients_send(tmp_path: Path) -> None:
    (request,) = versions(ASYNCAPI)["request"][-1:]
    narrowed = copy.deepcopy(request.schema)
    narrowed["properties"]["op"]["enum"] = narrowed["properties"]["op"]["enum"][:1]
    assert breaks(request.schema, narrowed)
