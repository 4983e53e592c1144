"""Markdown bios: HTML inside them sanitised with nh3 (ammonia), and rendered for v2.

A bio is Markdown source. When it holds HTML (nh3 sees a tag or comment), the HTML
is cleaned to ammonia's safe subset: ``<script>``, event handlers, ``javascript:``
links and the like are gone, while ``<b>`` or ``<a href>`` stay. nh3 escapes the
text around the tags as HTML does; ``&gt;`` and ``&amp;`` are turned back because
Markdown needs ``>`` (quotes) and neither can open a tag, while ``&lt;`` stays
escaped (turning it back could make a tag). Cleaning is idempotent, so a bio that
is read and written back does not change.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_UNESCAPE = re.compile(r"&(gt|amp);")
_TEXT = {"gt": ">", "amp": "&"}
_renderer = MarkdownIt("commonmark", {"html": True, "linkify": False})


def sanitise(markdown: str) -> str:
    """``markdown`` with any HTML in it reduced to the safe subset."""
    if not nh3.is_html(markdown):
        return markdown
    return _UNESCAPE.sub(lambda m: _TEXT[m.group(1)], nh3.clean(markdown))


def render_html(markdown: str) -> str:
    """The bio as safe HTML (Markdown rendered, then sanitised again)."""
    return nh3.clean(_renderer.render(markdown))
