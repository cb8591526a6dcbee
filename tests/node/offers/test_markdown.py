"""Descriptions: Markdown in, sanitised HTML out; peers' HTML through the same sanitiser."""

from __future__ import annotations

import re

import pytest

from node.offers.markdown import excerpt, plain_text, render_markdown, sanitise_html

# An event handler or a style attribute inside a real tag (escaped text uses &lt;).
ACTIVE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\s(on[a-z]+|style)\s*=")


def test_markdown_renders_to_html() -> None:
    html = render_markdown("Picked **this morning**, *unwaxed*.\n\n- Reinette\n- Gala")

    assert "<strong>this morning</strong>" in html
    assert "<em>unwaxed</em>" in html
    assert "<ul>" in html
    assert "<li>Reinette</li>" in html


def test_headings_are_shifted_below_the_page_title() -> None:
    html = render_markdown("# Varieties\n\n## Storage")

    assert "<h3>Varieties</h3>" in html
    assert "<h4>Storage</h4>" in html
    assert "<h1" not in html


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(document.cookie)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="https://coop.example" onclick="steal()">x</a>',
        '<p style="position:fixed;top:0">overlay</p>',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        '<iframe src="https://evil.example"></iframe>',
    ],
)
def test_nothing_active_survives_a_description(source: str) -> None:
    html = render_markdown(f"Apples. {source}").lower()

    assert not re.search(r"<(script|img|iframe|style)", html)
    assert not ACTIVE_ATTRIBUTE.search(html)
    assert "javascript:" not in " ".join(re.findall(r"<[^>]*>", html))


def test_raw_html_is_shown_as_text_not_dropped() -> None:
    # A member who types HTML sees what they typed; nothing of it runs.
    html = render_markdown("Use <b>bold</b> <script>x()</script>")

    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert "<b>" not in html


def test_links_leave_with_nofollow_noopener_noreferrer() -> None:
    html = render_markdown("[Our farm](https://farm.example/about)")

    assert html == (
        '<p><a href="https://farm.example/about" rel="nofollow noopener noreferrer">'
        "Our farm</a></p>"
    )


def test_markdown_images_become_links_not_embedded_images() -> None:
    html = render_markdown("![a basket](https://tracker.example/pixel.png)")

    assert "<img" not in html
    assert 'href="https://tracker.example/pixel.png"' in html


def test_remote_html_is_reduced_to_the_allow_list() -> None:
    remote = (
        '<p class="x" style="color:red" onmouseover="x()">Fresh <b>bread</b>'
        '<img src="https://e.example/i.png" onerror="alert(1)">'
        '<a href="javascript:alert(1)">bad</a>'
        '<a href="https://bakery.example" target="_blank" rel="me">good</a></p>'
        "<script>steal()</script><style>body{display:none}</style>"
        "<!-- a comment --><form><input name=q></form>"
    )

    html = sanitise_html(remote)

    assert html == (
        '<p>Fresh <b>bread</b><a rel="nofollow noopener noreferrer">bad</a>'
        '<a href="https://bakery.example" rel="nofollow noopener noreferrer">good</a></p>'
    )


def test_plain_text_keeps_block_breaks_and_decodes_entities() -> None:
    assert plain_text("<p>Fish &amp; chips</p><ul><li>cod</li><li>hake</li></ul>") == (
        "Fish & chips\ncod\nhake"
    )


def test_an_excerpt_is_cut_at_a_word_with_an_ellipsis() -> None:
    text = excerpt("<p>" + "orchard " * 100 + "</p>", limit=40)

    assert text.endswith("…")
    assert len(text) <= 40
    assert "orcha…" not in text
    assert excerpt("<p>Short</p>") == "Short"
