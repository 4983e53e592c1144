"""Format the figures of a chaos run (``GATEHOUSE_CHAOS_REPORT``, JSON lines) as the
Markdown table of bench/RESULTS.md::

    python -m tests.chaos.report .data/chaos-report.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = [
    ("fault", "fault"),
    ("fault_s", "fault (s)"),
    ("writes", "writes"),
    ("acknowledged", "201s"),
    ("subscribers", "subscribers"),
    ("events_checked", "events checked"),
    ("lost", "lost"),
    ("duplicated", "dup"),
    ("out_of_order", "out of order"),
    ("phantom", "no-commit events"),
    ("errors", "client errors"),
    ("errors_after_fault_s", "errors after fault end (s)"),
    ("socket_drops", "socket drops"),
]


def table(lines: list[str]) -> str:
    rows = [json.loads(line) for line in lines if line.strip()]
    head = "| " + " | ".join(title for _, title in COLUMNS) + " | verdict |"
    rule = "|" + "---|" * (len(COLUMNS) + 1)
    body = []
    for row in rows:
        cells = [str(row.get(key, "")) for key, _ in COLUMNS]
        verdict = "; ".join(row.get("violations", [])) or "all properties hold"
        body.append("| " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join([head, rule, *body])


if __name__ == "__main__":
    print(table(Path(sys.argv[1]).read_text().splitlines()))
