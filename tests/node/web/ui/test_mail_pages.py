"""Email notifications in the browser, against a real SMTP server: a member gives her
address and chooses per kind; the confirmation email arrives in her language and its
link confirms only when its button is pressed; an email's unsubscribe link stops what
it names, by its button or by a mail client's one-click POST (RFC 8058), and changes
nothing when it is only opened or when its signature is wrong."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from node.mail import addresses, store, tokens, worker
from node.mail.kinds import ALL, Frequency, Kind
from tests.node.web.ui.test_pages import check_structure
from tests.node.web.ui.test_sessions import Browser
from tests.support.coops import add_member
from tests.support.network import Network, TestNode
from tests.support.smtp import MailServer, mail_server

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
VERIFY_LINK = re.compile(r"https://alpha\.test(/mail/verify/[A-Za-z0-9_-]+)")
ONE_CLICK = b"List-Unsubscribe=One-Click"
PASSWORDS = {"ana": "ana's good password", "ben": "ben's good password"}
MEMBER_KINDS = ("proposal_opened", "proposal_reminder", "proposal_outcome", "order_answered")
ADMIN_KINDS = ("follow_request", "shared_invitation", "order_received", "peer_failing")


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    with mail_server() as server:
        yield server


async def coop(network: Network, **settings: Any) -> tuple[TestNode, dict[str, int]]:
    """alpha.test with Ana (an admin) and Ben (a member): the node, and their ids."""
    node = await network.add("alpha.test", name="Alpha Market", **settings)
    ana = await add_member(node, username="ana", password=PASSWORDS["ana"], role="admin")
    ben = await add_member(node, username="ben", password=PASSWORDS["ben"])
    return node, {"ana": int(ana["id"]), "ben": int(ben["id"])}


async def logged_in(network: Network, node: TestNode, username: str) -> Browser:
    browser = Browser(network, node)
    response = await browser.login(username, PASSWORDS[username])
    assert response.status_code == 303, response.text
    browser.http.headers.update(HTML)
    return browser


def anonymous(network: Network, node: TestNode) -> httpx.AsyncClient:
    """A client without cookies: a mail client, or the member on another device."""
    return Browser(network, node).http


async def form_token(browser: Browser) -> str:
    page = await browser.http.get("/me/notifications")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def text_of(response: httpx.Response) -> str:
    return " ".join("".join(check_structure(response.text).text).split())


def selected(page: str, kind: str) -> str:
    """The choice shown for ``kind``."""
    found = re.search(rf'<select id="kind-{kind}" name="{kind}"[^>]*>(.*?)</select>', page, re.S)
    assert found is not None, kind
    [value] = re.findall(r'<option value="(\w+)" selected>', found.group(1))
    return str(value)


def token_page_headers(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "location" not in response.headers


async def unsubscribe_token(node: TestNode, member_id: int, kind: str) -> str:
    found = await node.node.db.read(lambda conn: store.recipient(conn, member_id))
    assert found is not None
    return tokens.unsubscribe_token(found.secret, member_id, kind)


async def test_the_page_says_when_the_node_sends_no_email(network: Network) -> None:
    node, _ = await coop(network)
    visitor = await anonymous(network, node).get("/me/notifications")
    assert visitor.status_code == 303
    assert visitor.headers["location"] == "/login?next=/me/notifications"

    ben = await logged_in(network, node, "ben")
    me = await ben.http.get("/me")
    assert 'href="/me/notifications"' in me.text
    assert "Email notifications" in text_of(me)
    page = await ben.http.get("/me/notifications")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    shown = text_of(page)
    assert "This node sends no email yet: its admin has not set up a mail server." in shown
    assert "No address yet" in shown

    french = await ben.http.get("/me/notifications?lang=fr")
    assert french.headers["content-language"] == "fr"
    shown = text_of(french)
    assert "Ce nœud n’envoie pas encore d’e-mails" in shown
    assert "Une proposition est ouverte au vote" in shown
    assert "Dans le résumé du jour" in shown


async def test_a_new_address_is_confirmed_by_the_button_of_its_link_in_her_language(
    network: Network, smtp: MailServer
) -> None:
    node, ids = await coop(network, **smtp.settings())
    ben = await logged_in(network, node, "ben")
    page = await ben.http.get("/me/notifications")
    assert "sends no email" not in page.text

    sent = await ben.http.post(
        "/me/notifications",
        data={"csrf": await form_token(ben), "email": " Ben@Mail.TEST ", "language": "fr"},
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/me/notifications?saved=1&sent=1"
    shown = text_of(await ben.http.get(sent.headers["location"]))
    assert "Saved." in shown
    assert "We sent a confirmation link to Ben@mail.test." in shown
    assert "waiting for the confirmation" in shown
    assert 'value="Ben@mail.test"' in (await ben.http.get("/me/notifications")).text

    await worker.run_once(node.node)
    [first] = smtp.to("Ben@mail.test")
    assert first.subject == "Confirmez votre adresse e-mail pour Alpha Market"
    # The link again: a second email, whose link replaces the first one's.
    again = await ben.http.post("/me/notifications/verify", data={"csrf": await form_token(ben)})
    assert again.status_code == 303
    assert again.headers["location"] == "/me/notifications?sent=1"
    await worker.run_once(node.node)
    assert len(smtp.to("Ben@mail.test")) == 2
    old_link = VERIFY_LINK.search(first.text)
    new_link = VERIFY_LINK.search(smtp.to("Ben@mail.test")[1].text)
    assert old_link is not None, first.text
    assert new_link is not None

    # Opening the link (a link checker, a mail filter) shows a button, nothing more.
    other_device = anonymous(network, node)
    for _ in range(2):
        opened = await other_device.get(new_link.group(1), headers=HTML)
        assert opened.status_code == 200
        token_page_headers(opened)
        assert f'<form class="confirm" method="post" action="{new_link.group(1)}">' in opened.text
        assert "Confirm my address" in text_of(opened)
    assert not (await addresses.preferences(node.node, ids["ben"])).verified

    stale = await other_device.post(old_link.group(1), headers=HTML)
    assert stale.status_code == 404
    token_page_headers(stale)
    assert "This link is not valid or has expired" in text_of(stale)
    confirmed = await other_device.post(new_link.group(1), headers=HTML)
    assert confirmed.status_code == 200
    token_page_headers(confirmed)
    assert "Your address is confirmed" in text_of(confirmed)
    assert (await addresses.preferences(node.node, ids["ben"])).verified
    assert (await other_device.post(new_link.group(1))).status_code == 404  # used once

    shown = text_of(await ben.http.get("/me/notifications"))
    assert "Ben@mail.test: confirmed." in shown
    assert "Send the link again" not in shown
    refused = await ben.http.post("/me/notifications/verify", data={"csrf": await form_token(ben)})
    assert refused.status_code == 422
    assert "this address is already verified" in text_of(refused)


async def test_an_invalid_address_shows_the_form_again_and_changes_nothing(
    network: Network,
) -> None:
    node, ids = await coop(network)
    ben = await logged_in(network, node, "ben")
    before = await addresses.preferences(node.node, ids["ben"])

    refused = await ben.http.post(
        "/me/notifications",
        data={
            "csrf": await form_token(ben),
            "email": "ben at mail.test",
            "language": "en",
            "proposal_opened": "never",
        },
    )
    assert refused.status_code == 422
    assert refused.headers["cache-control"] == "no-store"
    shown = text_of(refused)
    assert "Nothing was saved" in shown
    assert "this is not an email address such as name@example.org" in shown
    assert 'value="ben at mail.test"' in refused.text  # what was typed, kept
    assert 'aria-describedby="email-hint email-error" aria-invalid="true"' in refused.text
    assert selected(refused.text, "proposal_opened") == "never"  # as chosen, not saved
    assert await addresses.preferences(node.node, ids["ben"]) == before

    # In French, the reason too.
    french = await ben.http.post(
        "/me/notifications?lang=fr",
        data={"csrf": await form_token(ben), "email": "bén@mail.test"},
    )
    assert french.status_code == 422
    assert "ce n’est pas une adresse e-mail comme nom@exemple.org" in text_of(french)

    # A form without its token, or from another site, is refused before anything.
    forged = await ben.http.post(
        "/me/notifications", data={"csrf": "guess", "email": "ben@mail.test"}
    )
    assert forged.status_code == 403
    cross = await ben.http.post(
        "/me/notifications",
        data={"csrf": await form_token(ben), "email": "ben@mail.test"},
        headers={"Origin": "https://evil.test"},
    )
    assert cross.status_code == 403
    assert await addresses.preferences(node.node, ids["ben"]) == before


async def test_the_choice_for_each_kind_is_saved_and_shown(network: Network) -> None:
    node, ids = await coop(network)
    ben = await logged_in(network, node, "ben")
    page = await ben.http.get("/me/notifications")
    assert [selected(page.text, kind) for kind in MEMBER_KINDS] == ["now"] * 4

    saved = await ben.http.post(
        "/me/notifications",
        data={
            "csrf": await form_token(ben),
            "email": "",
            "language": "en",
            "proposal_opened": "never",
            "proposal_reminder": "now",
            "proposal_outcome": "daily",
            "order_answered": "daily",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/me/notifications?saved=1"
    page = await ben.http.get(saved.headers["location"])
    assert "Saved." in text_of(page)
    assert "We sent" not in page.text
    assert [selected(page.text, kind) for kind in MEMBER_KINDS] == [
        "never",
        "now",
        "daily",
        "daily",
    ]
    chosen = (await addresses.preferences(node.node, ids["ben"])).chosen
    assert chosen[Kind.PROPOSAL_OPENED] == Frequency.NEVER
    assert chosen[Kind.PROPOSAL_OUTCOME] == Frequency.DAILY

    unknown = await ben.http.post(
        "/me/notifications",
        data={"csrf": await form_token(ben), "email": "", "proposal_opened": "hourly"},
    )
    assert unknown.status_code == 422
    assert "Choose at once, in the daily summary or never." in text_of(unknown)
    assert (await addresses.preferences(node.node, ids["ben"])).chosen == chosen


async def test_an_admin_chooses_about_the_admin_kinds_and_a_member_cannot(
    network: Network,
) -> None:
    node, ids = await coop(network)
    ana = await logged_in(network, node, "ana")
    admin_page = await ana.http.get("/me/notifications")
    shown = text_of(admin_page)
    assert "As an administrator" in shown
    assert "A request to follow the co-op" in shown
    assert "A server the co-op federates with has failed for a day" in shown
    assert [selected(admin_page.text, kind) for kind in ADMIN_KINDS] == ["now"] * 4
    await addresses.change(node.node, ids["ana"], email="ana@mail.test")
    # A form without the address field leaves the address as it is.
    saved = await ana.http.post(
        "/me/notifications", data={"csrf": await form_token(ana), "peer_failing": "daily"}
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/me/notifications?saved=1"
    found = await addresses.preferences(node.node, ids["ana"])
    assert found.chosen[Kind.PEER_FAILING] == Frequency.DAILY
    assert found.address == "ana@mail.test"

    ben = await logged_in(network, node, "ben")
    member_page = await ben.http.get("/me/notifications")
    assert "As an administrator" not in member_page.text
    for kind in ADMIN_KINDS:
        assert f'name="{kind}"' not in member_page.text
    before = await addresses.preferences(node.node, ids["ben"])
    refused = await ben.http.post(
        "/me/notifications",
        data={"csrf": await form_token(ben), "email": "", "follow_request": "never"},
    )
    assert refused.status_code == 422
    assert await addresses.preferences(node.node, ids["ben"]) == before


async def test_one_click_unsubscribe_answers_200_and_stops_that_kind(network: Network) -> None:
    node, ids = await coop(network)
    await addresses.change(node.node, ids["ben"], email="ben@mail.test")
    mail_client = anonymous(network, node)
    reminder = f"/mail/unsubscribe/{await unsubscribe_token(node, ids['ben'], 'proposal_reminder')}"

    # Opening the link shows what will stop, and changes nothing.
    opened = await mail_client.get(reminder, headers=HTML)
    assert opened.status_code == 200
    token_page_headers(opened)
    shown = text_of(opened)
    assert "A reminder before a vote closes, when I have not voted" in shown
    assert f'<form class="unsubscribe" method="post" action="{reminder}">' in opened.text
    assert (await addresses.preferences(node.node, ids["ben"])).chosen[
        Kind.PROPOSAL_REMINDER
    ] == Frequency.NOW

    # The mail client's POST: the exact body, no cookie, no Origin, no form token.
    done = await mail_client.post(
        reminder,
        content=ONE_CLICK,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200, done.text
    token_page_headers(done)
    shown = text_of(done)
    assert "You will no longer receive these emails:" in shown
    assert "A reminder before a vote closes" in shown
    assert 'href="/me/notifications"' in done.text
    chosen = (await addresses.preferences(node.node, ids["ben"])).chosen
    assert chosen[Kind.PROPOSAL_REMINDER] == Frequency.NEVER
    assert chosen[Kind.PROPOSAL_OPENED] == Frequency.NOW
    again = await mail_client.post(reminder, content=ONE_CLICK)  # twice is harmless
    assert again.status_code == 200

    # The same as multipart/form-data.
    outcome = await unsubscribe_token(node, ids["ben"], "proposal_outcome")
    multipart = await mail_client.post(
        f"/mail/unsubscribe/{outcome}", files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert multipart.status_code == 200
    assert multipart.headers["content-type"].startswith("text/html")
    chosen = (await addresses.preferences(node.node, ids["ben"])).chosen
    assert chosen[Kind.PROPOSAL_OUTCOME] == Frequency.NEVER

    # "all" stops every kind; in French, the page says so.
    everything = f"/mail/unsubscribe/{await unsubscribe_token(node, ids['ben'], ALL)}"
    asked = await mail_client.get(everything, headers={**HTML, "Accept-Language": "fr"})
    assert "Appuyez sur le bouton pour ne plus recevoir aucun e-mail de Alpha Market." in (
        text_of(asked)
    )
    stopped = await mail_client.post(
        everything, content=ONE_CLICK, headers={"Content-Type": "multipart/form-data"}
    )
    assert stopped.status_code == 200
    assert "You will no longer receive any email from Alpha Market." in text_of(stopped)
    chosen = (await addresses.preferences(node.node, ids["ben"])).chosen
    assert set(chosen.values()) == {Frequency.NEVER}


async def test_a_wrong_token_answers_404_and_changes_nothing(network: Network) -> None:
    node, ids = await coop(network)
    await addresses.change(node.node, ids["ben"], email="ben@mail.test")
    await addresses.change(node.node, ids["ana"], email="ana@mail.test")
    good = await unsubscribe_token(node, ids["ben"], "proposal_opened")
    member, kind, signature = good.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    mail_client = anonymous(network, node)
    before = {who: await addresses.preferences(node.node, i) for who, i in ids.items()}
    for token in (
        f"{member}.{kind}.{flipped}",  # a wrong signature
        f"{ids['ana']}.{kind}.{signature}",  # another member's id under Ben's signature
        f"{member}.not_a_kind.{signature}",
        "nothing-like-a-token",
    ):
        opened = await mail_client.get(f"/mail/unsubscribe/{token}", headers=HTML)
        assert opened.status_code == 404, token
        token_page_headers(opened)
        assert "This link is not valid or has expired" in text_of(opened)
        posted = await mail_client.post(f"/mail/unsubscribe/{token}", content=ONE_CLICK)
        assert posted.status_code == 404, token
        token_page_headers(posted)
    # A body far longer than a one-click request is refused, and stops nothing.
    too_long = await mail_client.post(f"/mail/unsubscribe/{good}", content=b"x" * 5000)
    assert too_long.status_code == 413
    # A confirmation token nobody was sent.
    unknown = await mail_client.post("/mail/verify/made-up-token", headers=HTML)
    assert unknown.status_code == 404
    after = {who: await addresses.preferences(node.node, i) for who, i in ids.items()}
    assert after == before


async def test_too_many_confirmation_emails_are_refused_with_a_page(network: Network) -> None:
    node, ids = await coop(network)
    ben = await logged_in(network, node, "ben")
    first = await ben.http.post(
        "/me/notifications", data={"csrf": await form_token(ben), "email": "ben@mail.test"}
    )
    assert first.status_code == 303
    for _ in range(addresses.VERIFY_PER_HOUR - 1):
        again = await ben.http.post(
            "/me/notifications/verify", data={"csrf": await form_token(ben)}
        )
        assert again.status_code == 303
    limited = await ben.http.post("/me/notifications/verify", data={"csrf": await form_token(ben)})
    assert limited.status_code == 429
    assert "too many verification emails in the last hour" in text_of(limited)
    other = await ben.http.post(
        "/me/notifications", data={"csrf": await form_token(ben), "email": "other@mail.test"}
    )
    assert other.status_code == 429
    assert (await addresses.preferences(node.node, ids["ben"])).address == "ben@mail.test"
