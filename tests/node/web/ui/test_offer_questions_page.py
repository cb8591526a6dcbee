"""Questions under the co-op's own offers, on the offer's page, where the co-op takes
them (``offer_questions``): a buyer's question from Mastodon shown with where it comes
from, a member's answer from the page's form, refusals, a report from the page; where
the co-op takes none, no section and no question kept."""

from __future__ import annotations

from typing import Any

from node.discussion import store
from tests.node.web.ui.test_proposal_pages import HTML, browser_of
from tests.node.web.ui.test_thread_pages import block, token_of
from tests.support.coops import Coop, make_coop
from tests.support.network import Network
from tests.support.trade import honey, publish


async def questions(coop: Coop, key: str) -> list[dict[str, Any]]:
    response = await coop.node.request("GET", f"/api/v1/offers/{key}/comments")
    assert response.status_code == 200, response.text
    return list(response.json()["comments"])


async def asked(coop: Coop, offer: dict[str, Any], text: str) -> None:
    buyer = coop.mastodon.add_user("buyer")
    inbox = f"{coop.node.base}/actors/coop/inbox"
    await coop.mastodon.reply(buyer, inbox, offer["uri"], text)


async def test_a_visitor_reads_the_questions_under_an_offer(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0, offer_questions=True)
    offer = await publish(coop.node, honey())
    key = offer["id"]
    assert offer["uri"] == f"{coop.node.base}/offers/{key}"
    empty = await coop.node.get(f"/offers/{key}", headers=HTML)
    assert empty.status_code == 200
    assert '<h2 id="discussion-heading">Questions</h2>' in empty.text
    assert "No comment yet." in empty.text

    await asked(coop, offer, "<p>Do you deliver to Brest?</p>")
    await network.settle()
    [question] = await questions(coop, key)
    page = await coop.node.get(f"/offers/{key}", headers=HTML)
    assert page.status_code == 200
    assert "Lavender honey" in page.text
    assert "Discussion" not in page.text
    assert "data-live-thread" not in page.text  # no refresh script for an offer
    theirs = block(page.text, question["key"])
    assert "<p>Do you deliver to Brest?</p>" in theirs
    assert "Buyer" in theirs
    assert "from outside the co-op" in theirs
    assert "from mastodon.test" in theirs
    # A visitor reads, and is asked to log in to write.
    assert 'name="text"' not in page.text
    assert "/report" not in page.text
    assert f'<a href="/login?next=/offers/{key}">Log in to comment</a>' in page.text
    # A client asking for ActivityStreams still gets the offer itself.
    document = await coop.node.get(f"/offers/{key}")
    assert document.json()["id"] == offer["uri"]


async def test_a_member_answers_a_question_from_the_offer_page(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0, offer_questions=True)
    offer = await publish(coop.node, honey())
    key = offer["id"]
    path = f"/offers/{key}"
    await asked(coop, offer, "<p>Do you deliver to Brest?</p>")
    await network.settle()
    [question] = await questions(coop, key)

    member = await browser_of(network, coop, "m0")
    page = await member.get(path)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Ask the co-op a question" in page.text
    assert "Ask a question or give your view" not in page.text
    assert f'<form class="comment" method="post" action="{path}/comments">' in page.text
    assert f'name="reply_to" value="{question["key"]}"' in page.text
    assert f'name="back" value="{path}"' in page.text
    csrf = token_of(page)

    forged = await member.post(f"{path}/comments", data={"csrf": "guess", "text": "Yes"})
    assert forged.status_code == 403
    answer = await member.post(
        f"{path}/comments",
        data={"csrf": csrf, "text": "Yes, on **Tuesdays**.", "reply_to": question["key"]},
    )
    assert answer.status_code == 303
    _, said = await questions(coop, key)
    assert answer.headers["location"] == f"{path}#comment-{said['key']}"
    assert said["in_reply_to"] == question["id"]
    assert said["member"] is True

    page = await member.get(path)
    ours = block(page.text, said["key"])
    assert "<p>Yes, on <strong>Tuesdays</strong>.</p>" in ours
    assert f'<a href="#comment-{question["key"]}">in reply to Buyer</a>' in ours
    assert "from outside the co-op" not in ours
    assert page.text.index(f'id="comment-{question["key"]}"') < page.text.index(
        f'id="comment-{said["key"]}"'
    )

    # An empty question: the offer's page again, the reason beside the form.
    empty = await member.post(f"{path}/comments", data={"csrf": csrf, "text": "  "})
    assert empty.status_code == 422
    assert '<strong class="error" id="comment-error">the comment is empty</strong>' in empty.text
    assert "Lavender honey" in empty.text
    assert len(await questions(coop, key)) == 2
    # No such offer: refused, nothing stored.
    nowhere = await member.post("/offers/nothing-here/comments", data={"csrf": csrf, "text": "Hi"})
    assert nowhere.status_code == 404

    # A report from the offer's page comes back to it.
    reported = await member.post(
        f"/comments/{question['key']}/report",
        data={"csrf": csrf, "reason": "spam", "back": path},
    )
    assert reported.status_code == 303
    assert reported.headers["location"] == f"{path}?comment=reported#comment-{question['key']}"
    notice = await member.get(f"{path}?comment=reported")
    assert "the comment is reported to the co-op’s admin" in notice.text


async def test_a_withdrawn_offer_takes_no_more_questions(network: Network) -> None:
    coop = await make_coop(network, local=1, remote=0, offer_questions=True)
    offer = await publish(coop.node, honey())
    key = offer["id"]
    withdrawn = await coop.node.request("DELETE", f"/api/v1/offers/{key}", headers=coop.node.auth)
    assert withdrawn.status_code in (200, 204), withdrawn.text
    member = await browser_of(network, coop, "m0")
    page = await member.get(f"/offers/{key}")
    assert page.status_code == 410
    assert '<h2 id="discussion-heading">Questions</h2>' in page.text
    assert 'name="text"' not in page.text
    csrf = token_of(await member.get("/me"))
    refused = await member.post(f"/offers/{key}/comments", data={"csrf": csrf, "text": "Hi"})
    assert refused.status_code == 409
    assert "this offer is withdrawn" in refused.text


async def test_without_offer_questions_the_page_has_none_and_the_form_is_refused(
    network: Network,
) -> None:
    coop = await make_coop(network, local=1, remote=0)
    offer = await publish(coop.node, honey())
    key = offer["id"]
    member = await browser_of(network, coop, "m0")
    page = await member.get(f"/offers/{key}")
    assert page.status_code == 200
    assert "Lavender honey" in page.text
    assert "discussion-heading" not in page.text
    assert "Questions" not in page.text
    assert 'name="text"' not in page.text
    csrf = token_of(await member.get("/me"))

    refused = await member.post(
        f"/offers/{key}/comments", data={"csrf": csrf, "text": "Do you deliver?"}
    )
    assert refused.status_code == 403
    assert "this co-op takes no questions on its offers" in refused.text
    kept = await coop.node.node.db.read(
        lambda conn: store.thread(conn, offer["uri"], states=(store.VISIBLE, store.HIDDEN))
    )
    assert kept == []
