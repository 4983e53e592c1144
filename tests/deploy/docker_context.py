"""What ``docker build .`` sends: the repository filtered by ``.dockerignore``.

Docker reads each line as a pattern (``**`` any number of folders, ``*`` and ``?``
within one name, ``!`` re-includes); the last pattern that matches a path or one of
its parent folders decides. This mirrors BuildKit's ``MatchesOrParentMatches``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]


def _regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


@cache
def rules(root: Path = ROOT) -> tuple[tuple[bool, re.Pattern[str]], ...]:
    parsed = []
    for raw in (root / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        parsed.append((negated, _regex(str(PurePosixPath(pattern.strip("/"))))))
    return tuple(parsed)


def is_sent(relative: str, root: Path = ROOT) -> bool:
    """True when ``relative`` (a POSIX path in the repository) is in the build context."""
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in rules(root):
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return not excluded


def tracked_files(root: Path = ROOT) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in listed.stdout.splitlines() if (root / line).is_file()]


def context_files(root: Path = ROOT) -> Iterator[str]:
    """The files of the working tree (tracked or not ignored) that the build context holds."""
    return (path for path in tracked_files(root) if is_sent(path, root))
