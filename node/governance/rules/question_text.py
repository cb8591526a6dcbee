"""A proposal's title at the head of its ``content``, for servers that show nothing else.

Mastodon shows a ``Question`` as a post whose text is its ``content`` alone: a
proposal's ``name`` (its title) never appears, and a poll reads "For / Against /
Abstain" about nothing. So the title leads the content as a paragraph of its own, in
bold, and the text follows. A coopnode reading a proposal shows the title apart: it
takes that first paragraph off again when it is exactly the title.
"""

from __future__ import annotations

import html


def _title_paragraph(title: str) -> str:
    return f"<p><strong>{html.escape(title, quote=True)}</strong></p>"


def titled(title: str, content: str) -> str:
    """``content`` (sanitised HTML, maybe empty) led by the title."""
    return _title_paragraph(title) + content


def untitled(title: str, content: str) -> str:
    """``content`` without the title paragraph :func:`titled` put at its head, if it
    has one; otherwise as it came (a proposal from an older node, or from elsewhere)."""
    return content.removeprefix(_title_paragraph(title))
