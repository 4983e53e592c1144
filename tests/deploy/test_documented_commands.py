"""Every ``gatehouse ...`` command the documentation tells an operator to run exists.

docs/operations.md and the README are what an SRE follows at 3 a.m.; a command there
that the launcher refuses is a runbook that fails when it is needed.
"""

from __future__ import annotations

import itertools
import re

import pytest

from tests.deploy import environment

from .test_compose import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
_COMMAND = re.compile(r"`gatehouse ([^`]+)`")
# Documented ahead of the code that lands them (owner in the value); strict: an entry
# whose command the launcher accepts fails until it is removed.
PENDING: dict[tuple[str, ...], str] = {}


def documented_commands() -> dict[tuple[str, ...], str]:
    """Each documented command line (alternatives ``a|b`` expanded, ``[optional]`` parts
    and ``--help`` left out) -> where it is written."""
    found: dict[tuple[str, ...], str] = {}
    for document in DOCUMENTS:
        for number, line in enumerate(document.read_text().splitlines(), 1):
            for text in _COMMAND.findall(line):
                text = re.sub(r"\[[^\]]*\]", "", text)
                words = text.split()
                if not words or any(w.startswith(("<", "$", "-")) for w in words):
                    continue
                for args in itertools.product(*(w.split("|") for w in words)):
                    found.setdefault(args, f"{document.relative_to(ROOT)}:{number}")
    return found


COMMANDS = documented_commands()


def test_the_documentation_names_commands() -> None:
    assert ("migrate", "authors") in COMMANDS
    assert ("run", "relay") in COMMANDS


@pytest.mark.parametrize("args", sorted(set(COMMANDS) - set(PENDING)), ids=" ".join)
def test_every_documented_command_is_one_the_launcher_accepts(args: tuple[str, ...]) -> None:
    assert environment.command_problem(list(args)) is None, COMMANDS[args]


def test_pending_commands_are_still_pending() -> None:
    landed = [args for args in PENDING if environment.command_problem(list(args)) is None]
    assert landed == [], f"the launcher accepts them now: drop them from PENDING: {landed}"
