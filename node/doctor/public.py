"""The checks made through the node's public URL, as a peer or a member reaches it:
the certificate, WebFinger and the actor, and what the reverse proxy passes on (the
Host, X-Forwarded-Proto, bodies as large as the node takes).

That the URL reaches *this* node, not an old copy or another site, is learned twice:
the actor it serves has the key in this database, and it knows the nonce the doctor
has just written there."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from node import __version__
from node.doctor import store
from node.doctor.findings import Finding, ok, problem, size, skipped, warning
from node.services import identity
from node.settings import Settings
from node.storage.database import Database
from node.urls import Urls

TIMEOUT = httpx.Timeout(20.0, connect=10.0)
CERTIFICATE_WARNING_DAYS = 14
ACTIVITY_JSON = "application/activity+json"
PROBE_PATH = "/doctor/probe/"
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str
    domain: str
    handle: str
    actor_id: str
    public_pem: str | None
    https: bool
    largest_body: int

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return parts.hostname or "", parts.port or (443 if self.https else 80)


def target_of(settings: Settings, public_pem: str | None) -> Target:
    return Target(
        base_url=settings.base_url,
        domain=settings.domain,
        handle=settings.handle,
        actor_id=Urls(settings.base_url).actor(settings.handle),
        public_pem=public_pem,
        https=not settings.local,
        largest_body=settings.largest_body,
    )


async def check(settings: Settings, db: Database, *, now: datetime) -> list[Finding]:
    actor = await db.read(lambda conn: identity.get_actor(conn, settings.handle))
    target = target_of(settings, actor.rsa_public_pem)
    nonce = secrets.token_urlsafe(32)
    await db.write(lambda conn: store.add_probe(conn, nonce, now=now))
    try:
        return await check_target(target, nonce)
    finally:
        await db.write(lambda conn: store.remove_probe(conn, nonce))


async def check_target(target: Target, nonce: str) -> list[Finding]:
    found: list[Finding] = []
    context = ssl.create_default_context()
    verify: ssl.SSLContext | bool = context
    if target.https:
        tls, trusted = await certificate(target, context)
        found.append(tls)
        if not trusted:
            # The rest is still worth knowing: read it without trusting the certificate.
            verify = False
    else:
        found.append(
            skipped(
                "tls", f"a local node at {target.base_url}: http on one machine, no certificate"
            )
        )
    async with httpx.AsyncClient(
        verify=verify,
        timeout=TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": f"coopnode-doctor/{__version__}"},
    ) as client:
        reached, finding = await webfinger(client, target)
        found.append(finding)
        if not reached:
            why = "nothing answers at the public URL (see above)"
            found.extend(skipped(check, why) for check in ("actor", "proxy", "body limit"))
            return found
        found.append(await actor(client, target))
        echoed, findings = await proxy(client, target, nonce)
        found.extend(findings)
        if echoed:
            found.append(await body_limit(client, target, nonce))
        else:
            found.append(skipped("body limit", "the public URL does not reach this node"))
    return found


async def certificate(target: Target, context: ssl.SSLContext) -> tuple[Finding, bool]:
    host, port = target.host_port
    advice = (
        "give the site a certificate from a CA the world trusts: Caddy gets one itself "
        "(ports 80 and 443 must reach the machine); with nginx, certbot --nginx"
    )
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), 15
        )
    except ssl.SSLCertVerificationError as exc:
        said = exc.verify_message or str(exc)
        return problem(
            "tls", f"this machine does not trust the certificate of {host}: {said}", advice
        ), False
    except ssl.SSLError as exc:
        return problem("tls", f"no TLS on {host}:{port}: {exc.reason or exc}", advice), False
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return (
            problem(
                "tls",
                f"cannot connect to {host}:{port}: {reason}",
                "check that the domain points at this machine and the proxy listens on 443",
            ),
            False,
        )
    try:
        cert: Any = writer.get_extra_info("peercert") or {}
        version = writer.get_extra_info("ssl_object").version()
    finally:
        writer.close()
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
    days = (expires - datetime.now(UTC)).days
    issuer = dict(item for part in cert.get("issuer", ()) for item in part)
    said = (
        f"{host} has a certificate this machine trusts ({version}), from "
        f"{issuer.get('organizationName') or issuer.get('commonName') or 'an issuer'}, "
        f"valid until {expires:%Y-%m-%d} ({days} days)"
    )
    if days < CERTIFICATE_WARNING_DAYS:
        return warning("tls", said, "it should have been renewed by now: see the proxy's log"), True
    return ok("tls", said), True


async def _get(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response | str:
    """The answer, or what went wrong, in words."""
    try:
        return await client.get(url, **kwargs)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _answered(response: httpx.Response) -> str:
    said = f"{response.status_code}"
    if response.is_redirect:
        said += f" to {response.headers.get('location', '?')}"
    server = response.headers.get("server")
    return f"{said} (from {server})" if server else said


async def webfinger(client: httpx.AsyncClient, target: Target) -> tuple[bool, Finding]:
    """Whether anything answered at the public URL, and what WebFinger said."""
    url = f"{target.base_url}/.well-known/webfinger"
    resource = f"acct:{target.handle}@{target.domain}"
    answer = await _get(client, url, params={"resource": resource})
    advice = (
        "the proxy must pass every path of the domain to the node, /.well-known included "
        "(deploy/Caddyfile and deploy/nginx.conf do)"
    )
    if isinstance(answer, str):
        return False, problem(
            "webfinger",
            f"nothing answers at {url}: {answer}",
            "start the node and its proxy, and check that the domain points at this machine",
        )
    if answer.status_code != 200:
        return True, problem("webfinger", f"{url} answered {_answered(answer)}", advice)
    document = _json(answer)
    links = document.get("links") if isinstance(document, dict) else None
    selves = [
        link.get("href")
        for link in links or ()
        if isinstance(link, dict)
        and link.get("rel") == "self"
        and link.get("type") == ACTIVITY_JSON
    ]
    if target.actor_id not in selves:
        return True, problem(
            "webfinger",
            f"{url} does not name {target.actor_id} for {resource} "
            f"(it names {selves or 'nothing'})",
            "another site answers for the domain: check where the domain points",
        )
    return True, ok("webfinger", f"{resource} is found through {target.base_url}")


async def actor(client: httpx.AsyncClient, target: Target) -> Finding:
    answer = await _get(client, target.actor_id, headers={"Accept": ACTIVITY_JSON})
    if isinstance(answer, str):
        return problem("actor", f"{target.actor_id} could not be read: {answer}", "")
    if answer.status_code != 200:
        return problem(
            "actor",
            f"{target.actor_id} answered {_answered(answer)}",
            "the proxy must pass every path to the node",
        )
    document = _json(answer)
    key = document.get("publicKey") if isinstance(document, dict) else None
    pem = key.get("publicKeyPem") if isinstance(key, dict) else None
    if not isinstance(document, dict) or document.get("id") != target.actor_id:
        return problem("actor", f"{target.actor_id} is not the co-op's actor document", "")
    if (
        target.public_pem is None
        or not isinstance(pem, str)
        or pem.strip() != target.public_pem.strip()
    ):
        return problem(
            "actor",
            f"{target.actor_id} has another key than this node's database: the public URL "
            "reaches another node (an old copy, or another machine)",
            "point the domain (or the proxy) at this node",
        )
    return ok("actor", f"{target.actor_id} is this node's co-op, with its key")


async def proxy(
    client: httpx.AsyncClient, target: Target, nonce: str
) -> tuple[bool, list[Finding]]:
    """Whether the URL reached this very node (it knows the nonce), and what the node
    saw of the request: the Host, and the scheme as the proxy said it."""
    url = f"{target.base_url}{PROBE_PATH}{nonce}"
    answer = await _get(client, url)
    if isinstance(answer, str):
        return False, [problem("proxy", f"{target.base_url} could not be read: {answer}", "")]
    seen = _json(answer)
    if answer.status_code != 200 or not isinstance(seen, dict) or seen.get("node") != "coopnode":
        return False, [
            problem(
                "proxy",
                f"{target.base_url} reaches another server than this node (a probe written "
                f"in its database answered {_answered(answer)})",
                "point the domain (or the proxy's upstream) at this node, and this doctor "
                "at its data directory",
            )
        ]
    found = [ok("proxy", f"{target.base_url} reaches this very node (it knows the probe)")]
    host = seen.get("host")
    if host != target.domain:
        found.append(
            problem(
                "proxy host",
                f"the proxy changes the Host header to {host!r}; the node is {target.domain}",
                "nginx needs `proxy_set_header Host $host;`; Caddy keeps the Host unless told "
                "otherwise (remove `header_up Host`)",
            )
        )
    else:
        found.append(ok("proxy host", f"the node sees the Host {host}, as sent"))
    if target.https:
        found.append(_scheme(seen))
    return True, found


def _scheme(seen: dict[str, Any]) -> Finding:
    """Whether the node learns from its proxy that the request came over https."""
    forwarded = seen.get("forwarded_proto")
    if seen.get("scheme") == "https":
        return ok("proxy https", "the proxy says the request came over https (X-Forwarded-Proto)")
    if not forwarded:
        return problem(
            "proxy https",
            "the proxy does not say the request came over https (no X-Forwarded-Proto)",
            "nginx needs `proxy_set_header X-Forwarded-Proto $scheme;`; Caddy sets it unless "
            "told otherwise (remove `header_up -X-Forwarded-Proto`)",
        )
    return problem(
        "proxy https",
        f"the node does not believe the proxy's X-Forwarded-Proto ({forwarded}): the proxy "
        f"connects from {seen.get('client')}, which is not in trusted_proxies",
        "add the proxy's address to trusted_proxies (coopnode.toml or "
        "COOPNODE_TRUSTED_PROXIES) and restart the node",
    )


async def _zeros(n: int) -> AsyncIterator[bytes]:
    chunk = bytes(_CHUNK)
    while n > 0:
        yield chunk[: min(n, _CHUNK)]
        n -= _CHUNK


async def body_limit(client: httpx.AsyncClient, target: Target, nonce: str) -> Finding:
    """POST a body as large as the largest the node takes (a photo at media_max_bytes
    and its form's fields): the proxy must let it through."""
    n = target.largest_body
    url = f"{target.base_url}{PROBE_PATH}{nonce}"
    advice = (
        f"let the proxy take bodies of {size(n)} ({n} bytes) or more: nginx "
        f"`client_max_body_size {-(-n // (1 << 20))}m;`, Caddy `request_body {{ max_size "
        f"{-(-n // (1 << 20))}MiB }}` (MiB, not MB)"
    )
    try:
        answer = await client.post(
            url,
            content=_zeros(n),
            headers={"Content-Length": str(n), "Content-Type": "application/octet-stream"},
        )
    except httpx.HTTPError as exc:
        return problem(
            "body limit",
            f"a body of {size(n)} did not get through: {type(exc).__name__} {exc}",
            advice,
        )
    seen = _json(answer)
    if answer.status_code == 200 and isinstance(seen, dict) and seen.get("received") == n:
        return ok(
            "body limit",
            f"a body of {size(n)} ({n} bytes: the largest photo and its form) gets through",
        )
    return problem(
        "body limit",
        f"a body of {size(n)} ({n} bytes), the largest photo with its form, was refused: "
        f"the proxy answered {_answered(answer)}",
        advice,
    )
