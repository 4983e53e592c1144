"""The checked-in message schemas and the compatibility rule between their versions.

Layout: ``events/<event type>/v<N>.json`` (CloudEvents on the bus, one file per
published version) and ``asyncapi/<message>/v<N>.json`` (the payloads of the
WebSocket messages of realtime's ``/asyncapi.json``). A published version is never
edited (``published.lock`` pins each file's digest): a change is a new ``v<N+1>``
that must keep every consumer of the versions before it working.

"Keeps the consumer working" means: every instance the *sender's* schema allows is
one the *receiver's* schema accepts (the sender's schema is a sub-schema of the
receiver's). For events and server-sent messages the sender is the new version and
the receiver the old one; for messages a client sends, old clients keep sending the
old version to a new server. :func:`breaks` decides it structurally for the part of
JSON Schema our messages use, and refuses (as a break) any keyword it cannot
reason about, so it never passes a change it does not understand.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

HERE = Path(__file__).parent
EVENTS = HERE / "events"
ASYNCAPI = HERE / "asyncapi"
LOCK = HERE / "published.lock"
_VERSION = re.compile(r"^v(\d+)\.json$")

FORMATS = FormatChecker(["uuid", "email"])


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339: a date, a time and an offset (``jsonschema`` checks it only with extras)."""
    if not isinstance(value, str):
        return True
    if "T" not in value.upper():
        raise ValueError("no time part")
    return datetime.fromisoformat(value.replace("z", "Z")).tzinfo is not None


@dataclass(frozen=True)
class Version:
    """One published version of one message's schema."""

    name: str  # event type or AsyncAPI message name
    number: int
    path: Path

    @property
    def schema(self) -> dict[str, Any]:
        return _load(self.path)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.number}"

    def errors(self, instance: Any) -> list[str]:
        """Why ``instance`` does not conform (empty when it does)."""
        found = validator(self.schema).iter_errors(instance)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]


@cache
def _load(path: Path) -> dict[str, Any]:
    schema = json.loads(path.read_text())
    assert isinstance(schema, dict), path
    return schema


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FORMATS)


def versions(folder: Path) -> dict[str, list[Version]]:
    """Every message of ``folder`` with its versions, oldest first."""
    catalogue: dict[str, list[Version]] = {}
    for directory in sorted(p for p in folder.iterdir() if p.is_dir()):
        found = []
        for path in directory.iterdir():
            match = _VERSION.match(path.name)
            assert match, f"{path}: schema files are named v<N>.json"
            found.append(Version(directory.name, int(match[1]), path))
        catalogue[directory.name] = sorted(found, key=lambda v: v.number)
    return catalogue


def latest(folder: Path, name: str) -> Version:
    known = versions(folder)
    assert name in known, f"no schema checked in for {name!r} under {folder.name}/"
    return known[name][-1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published() -> dict[str, str]:
    """``published.lock``: relative path of each published schema -> its sha256."""
    lock = json.loads(LOCK.read_text())
    assert isinstance(lock, dict)
    return lock


_ANNOTATIONS = {"$schema", "$id", "title", "description", "examples", "default", "$comment"}
_UNDERSTOOD = _ANNOTATIONS | {
    "type",
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
}
_ALL_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})


def breaks(sent: Any, accepted: Any, where: str = "") -> list[str]:
    """Why some instance valid under ``sent`` could be refused by ``accepted`` (empty: none).

    Conservative: a keyword outside ``_UNDERSTOOD`` on either side counts as a break.
    """
    at = where or "<root>"
    unknown = sorted((set(_as_dict(sent)) | set(_as_dict(accepted))) - _UNDERSTOOD)
    if unknown:
        return [f"{at}: cannot reason about {unknown}"]
    sent, accepted = _as_dict(sent), _as_dict(accepted)
    if not set(accepted) - _ANNOTATIONS:
        return []  # the receiver accepts anything here
    for union in ("anyOf", "oneOf"):
        if union in sent:
            return [b for branch in sent[union] for b in breaks(branch, accepted, where)]
    if "anyOf" in accepted or "oneOf" in accepted:
        branches = accepted.get("anyOf") or accepted["oneOf"]
        options = [breaks(sent, branch, where) for branch in branches]
        return [] if any(not o for o in options) else [f"{at}: matches no branch: {options}"]
    return _values(sent, accepted, at) or _shape(sent, accepted, where, at)


def _as_dict(schema: Any) -> dict[str, Any]:
    if schema is True:
        return {}
    assert isinstance(schema, dict), schema
    return schema


def _values(sent: dict[str, Any], accepted: dict[str, Any], at: str) -> list[str]:
    """Types, constants, enumerations and formats."""
    sent_values = _fixed_values(sent)
    accepted_values = _fixed_values(accepted)
    if accepted_values is not None and (
        sent_values is None or not all(v in accepted_values for v in sent_values)
    ):
        return [f"{at}: only {accepted_values} accepted, {sent_values or 'any value'} sent"]
    if sent_values is None:
        extra = _types(sent) - _types(accepted)
        if "integer" in extra and "number" in _types(accepted):
            extra.discard("integer")
        if extra:
            return [f"{at}: type {sorted(extra)} sent but not accepted"]
    elif not all(validator(accepted).is_valid(v) for v in sent_values):
        return [f"{at}: some of {sent_values} refused"]
    for keyword in ("format", "pattern"):
        if keyword in accepted and sent.get(keyword) != accepted[keyword] and sent_values is None:
            return [f"{at}: {keyword} {accepted[keyword]!r} required, {sent.get(keyword)!r} sent"]
    return _bounds(sent, accepted, at) if sent_values is None else []


def _fixed_values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return list(schema["enum"])
    return None


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type", sorted(_ALL_TYPES))
    return {declared} if isinstance(declared, str) else set(declared)


def _bounds(sent: dict[str, Any], accepted: dict[str, Any], at: str) -> list[str]:
    problems = []
    for low in ("minLength", "minimum"):
        if low in accepted and sent.get(low, float("-inf")) < accepted[low]:
            problems.append(f"{at}: {low} {accepted[low]} required, {sent.get(low)} sent")
    for high in ("maxLength", "maximum"):
        if high in accepted and sent.get(high, float("inf")) > accepted[high]:
            problems.append(f"{at}: {high} {accepted[high]} required, {sent.get(high)} sent")
    return problems


def _shape(sent: dict[str, Any], accepted: dict[str, Any], where: str, at: str) -> list[str]:
    """Objects (required and declared members) and arrays (items)."""
    problems = []
    missing = sorted(set(accepted.get("required", ())) - set(sent.get("required", ())))
    if missing:
        problems.append(f"{at}: {missing} required by the receiver, optional for the sender")
    sent_props, accepted_props = sent.get("properties", {}), accepted.get("properties", {})
    closed = sent.get("additionalProperties") is False
    for name, schema in accepted_props.items():
        if name in sent_props:
            problems += breaks(sent_props[name], schema, f"{where}/{name}")
        elif not closed and set(_as_dict(schema)) - _ANNOTATIONS:
            problems.append(f"{at}: {name!r} is no longer declared (it could come in any form)")
    if accepted.get("additionalProperties") is False:
        extra = sorted(set(sent_props) - set(accepted_props))
        if not closed or extra:
            problems.append(
                f"{at}: receiver refuses members it does not know, sender may add {extra or 'any'}"
            )
    if "items" in accepted:
        problems += breaks(sent.get("items", {}), accepted["items"], f"{where}[]")
    return problems
