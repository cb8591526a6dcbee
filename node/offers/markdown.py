"""Markdown from members, HTML from peers: both leave here as the same safe HTML.

Members write descriptions in CommonMark, rendered by markdown-it-py with raw HTML off:
a ``<script>`` typed into a description is shown as text, never run. The result then
goes through nh3 (the Python binding of the Rust sanitiser ammonia) with an explicit
allow-list, and so does every ``content`` or ``contentMap`` a peer sends: whatever a
renderer or a remote server gets wrong, no script, event handler, ``style`` or
``javascript:`` URL reaches a page the node serves.
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "a",
        "em",
        "strong",
        "b",
        "i",
        "s",
        "del",
        "ul",
        "ol",
        "li",
        "blockquote",
        "code",
        "pre",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    }
)
ALLOWED_ATTRIBUTES = {"a": frozenset({"href"}), "ol": frozenset({"start"})}
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Every link leaves with this rel, replacing any the input had: no referrer, no
# window.opener, and no ranking credit for whatever a description links to.
LINK_REL = "nofollow noopener noreferrer"
# Elements dropped with their content, not merely unwrapped.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "iframe", "object", "noscript"})

# An offer page shows the title as its heading; a member's "# Heading" becomes <h3>,
# "##" <h4>, and so on, so that it never competes with the page's own headings. (Peers'
# headings are kept as they come: h1 and h2 are on the list for them.)
HEADING_SHIFT = 2


def sanitise_html(fragment: str) -> str:
    """``fragment`` reduced to the allow-list: for HTML received from peers."""
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(ALLOWED_URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    ).strip()


def render_markdown(source: str) -> str:
    """A member's Markdown as sanitised HTML."""
    parser = _parser()
    tokens = parser.parse(source)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            level = min(int(token.tag[1]) + HEADING_SHIFT, 6)
            token.tag = f"h{level}"
    return sanitise_html(parser.renderer.render(tokens, parser.options, {}))


def plain_text(fragment: str) -> str:
    """The text of an HTML fragment, for excerpts and search: tags removed, block
    boundaries kept as line breaks, entities decoded."""
    spaced = fragment.replace("</p>", "</p>\n").replace("<br>", "<br>\n")
    spaced = spaced.replace("</li>", "</li>\n").replace("</h", "\n</h")
    text = html.unescape(
        nh3.clean(spaced, tags=set(), clean_content_tags=set(DROPPED_WITH_CONTENT))
    )
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def excerpt(fragment: str, limit: int = 280) -> str:
    """At most ``limit`` characters of the fragment's text, cut at a word where one is
    near, with an ellipsis when cut."""
    text = " ".join(plain_text(fragment).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.") + "…"


@functools.cache
def _parser() -> MarkdownIt:
    # Loaded with the first text rendered, not at start-up.
    from markdown_it import MarkdownIt

    # Images are off: an <img> in a description would load a third party's file in
    # every reader's browser. "![alt](url)" comes out as "!" and a link to the file;
    # pictures belong in the offer's images, which the node checks and serves.
    return MarkdownIt("commonmark", {"html": False}).disable("image")
