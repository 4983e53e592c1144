"""schemathesis hooks for the authors API: data a schema cannot describe, made right.

Only schema-valid (positive) cases are touched, just before they are sent:

* ``Idempotency-Key``: by contract a new key per request; generated values repeat
  (hypothesis likes ``"0"``), which is a key reused for another body, a deliberate
  422 that the positive-data check would count as a rejection of valid data.
* ``If-Match``: a precondition on state the generator cannot know (a 412 answers a
  stale tag, as a 409 answers a taken name): sent as ``*``.
* ``cursor``: an opaque token the server made; a well-formed string that is not one
  is a 400. Positive cases page from the start instead.
* ``isbn``: the check digit is a rule JSON Schema cannot state: made valid.

Whatever the mode, a change of the admin API aimed at a demo identity goes to another
user, so that the identities keep their passwords for the runs that follow.

Used by the contracts suite over the gateway and by the authors service's own run
(``SCHEMATHESIS_HOOKS=<this file>``).
"""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode

DEMO_IDENTITIES = {"admin", "editor", "viewer", "auditor", "nobody"}
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
ISBN = re.compile(r"^(97[89]([- ]?[0-9]){10}|[0-9]([- ]?[0-9]){8}[- ]?[0-9Xx])$")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    _spare_the_demo_identities(case)
    meta = getattr(case, "meta", None)
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return
    headers = case.headers
    if headers is not None and KEY.match(str(headers.get("Idempotency-Key", ""))):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    if headers is not None and "If-Match" in headers:
        headers["If-Match"] = "*"
    if case.query is not None and "cursor" in case.query:
        del case.query["cursor"]
    if isinstance(case.body, dict) and ISBN.match(str(case.body.get("isbn", ""))):
        case.body["isbn"] = _random_isbn()


def _spare_the_demo_identities(case: Any) -> None:
    """The admin API changes users: schemathesis reuses usernames it saw in responses, and
    a demo identity disabled or given a new password could not log in for the runs of the
    identities that follow. Any admin-API change aimed at one goes to a user of its own."""
    path = case.path_parameters
    if (
        case.method.upper() != "GET"
        and case.path.startswith("/auth/admin/users/")
        and isinstance(path, dict)
        and str(path.get("username", "")).lower() in DEMO_IDENTITIES
    ):
        path["username"] = "contract-user"


def _random_isbn() -> str:
    digits = "978" + "".join(random.choice("0123456789") for _ in range(9))
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)
