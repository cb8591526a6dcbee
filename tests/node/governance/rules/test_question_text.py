"""A proposal's title leads its content for Mastodon, and a coopnode that reads the
proposal takes it off again, so that its page does not show the title twice."""

from __future__ import annotations

from typing import Any

from node.governance.rules.question_text import titled, untitled
from node.governance.rules.shared_question import read_question

TITLE = 'Open a second pickup point <"Lyon" & co>'


def question(content: str) -> dict[str, Any]:
    return {
        "type": "Question",
        "id": "https://host.example/proposals/1",
        "attributedTo": "https://host.example/actors/coop",
        "name": TITLE,
        "content": content,
        "oneOf": [{"type": "Note", "name": "For"}, {"type": "Note", "name": "Against"}],
        "endTime": "2027-01-01T00:00:00Z",
    }


def test_the_title_leads_the_content_escaped_and_comes_off_again() -> None:
    body = "<p>Near the station.</p>"

    shown = titled(TITLE, body)

    assert shown == (
        "<p><strong>Open a second pickup point &lt;&quot;Lyon&quot; &amp; co&gt;</strong></p>"
        + body
    )
    assert untitled(TITLE, shown) == body
    assert untitled(TITLE, titled(TITLE, "")) == ""


def test_a_shared_proposal_is_read_without_its_title_paragraph() -> None:
    assert read_question(question(titled(TITLE, "<p>Near the station.</p>"))).content == (
        "<p>Near the station.</p>"
    )


def test_content_that_does_not_start_with_the_title_is_kept_whole() -> None:
    # From a server that does not lead with the title, or leads with another one.
    other = "<p><strong>Another title</strong></p><p>Text.</p>"

    assert read_question(question(other)).content == other
    assert read_question(question("<p>Text.</p>")).content == "<p>Text.</p>"
