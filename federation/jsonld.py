"""JSON-LD processing against the contexts that ship in ``schemas/contexts``.

pyld never fetches a context over the network here. A fetched context is slow, fails when
w3.org or w3id.org is down, and lets whoever serves it change what every document that
names it means. Data Integrity 1.0 requires the same of its own contexts: implementations
"MUST treat the following JSON-LD context URLs as already resolved"
(https://www.w3.org/TR/vc-data-integrity/#contexts-and-vocabularies).

pyld is imported inside the functions that use it: it is slow to import and has no place
on the server's start-up path. Importing this module reads no file and imports no pyld.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from federation import resources

CONTEXTS_DIR = resources.schemas() / "contexts"

# The co-op vocabulary: the namespace IRI is chosen once and never changes, since every
# document already published uses it (see schemas/README.md).
COOP_NAMESPACE = "https://coopnode.org/ns#"
COOP_CONTEXT_URL = "https://coopnode.org/ns/v1"

AS_CONTEXT_URL = "https://www.w3.org/ns/activitystreams"
SECURITY_V1_CONTEXT_URL = "https://w3id.org/security/v1"
MULTIKEY_V1_CONTEXT_URL = "https://w3id.org/security/multikey/v1"
DATA_INTEGRITY_V1_CONTEXT_URL = "https://w3id.org/security/data-integrity/v1"
DATA_INTEGRITY_V2_CONTEXT_URL = "https://w3id.org/security/data-integrity/v2"

_FILES_BY_CANONICAL_URL = {
    AS_CONTEXT_URL: "activitystreams.jsonld",
    SECURITY_V1_CONTEXT_URL: "security-v1.jsonld",
    MULTIKEY_V1_CONTEXT_URL: "multikey-v1.jsonld",
    DATA_INTEGRITY_V1_CONTEXT_URL: "data-integrity-v1.jsonld",
    DATA_INTEGRITY_V2_CONTEXT_URL: "data-integrity-v2.jsonld",
    COOP_CONTEXT_URL: "coop-v1.jsonld",
}


def _spellings(url: str) -> list[str]:
    """The ways documents in the wild write ``url``: with ``http`` instead of ``https``,
    with a trailing ``#`` or ``/``, and, for ActivityStreams, as the file name the W3C
    also publishes it under, ``activitystreams.jsonld``
    (https://www.w3.org/TR/activitystreams-core/#jsonld)."""
    rest = url.removeprefix("https://")
    stems = [rest]
    if url == AS_CONTEXT_URL:
        stems.append(rest + ".jsonld")
    return [
        f"{scheme}{stem}{suffix}"
        for stem in stems
        for scheme in ("https://", "http://")
        for suffix in ("", "#", "/")
    ]


KNOWN_CONTEXTS: Mapping[str, str] = MappingProxyType(
    {
        spelling: file_name
        for url, file_name in _FILES_BY_CANONICAL_URL.items()
        for spelling in _spellings(url)
    }
)
"""Context URL (each accepted spelling) -> file name in :data:`CONTEXTS_DIR`."""


@functools.cache
def _read_context(file_name: str) -> dict[str, Any]:
    document = json.loads(CONTEXTS_DIR.joinpath(file_name).read_bytes())
    if not isinstance(document, dict) or "@context" not in document:
        raise ValueError(f"{file_name} is not a JSON-LD context document")
    return document


def load_context(url: str) -> dict[str, Any]:
    """The context document published at ``url``, from ``schemas/contexts``.

    Each file is parsed once per process; every call gets its own copy, so a caller (or
    pyld) that changes the result cannot change what the next document means.
    Raises :class:`KeyError` naming ``url`` when no file answers for it.
    """
    try:
        file_name = KNOWN_CONTEXTS[url]
    except KeyError:
        raise KeyError(f"no JSON-LD context is bundled for {url}") from None
    return copy.deepcopy(_read_context(file_name))


@functools.cache
def _coop_terms() -> dict[str, Any]:
    terms: dict[str, Any] = _read_context(KNOWN_CONTEXTS[COOP_CONTEXT_URL])["@context"]
    return terms


def coop_context() -> dict[str, Any]:
    """The co-op vocabulary's term definitions, to embed in a published document's
    ``@context`` beside the standard context URLs.

    Nobody serves :data:`COOP_CONTEXT_URL`: a peer that processes JSON-LD would have to
    fetch it, fail, and refuse the document (Fedify answers 400). Embedded, the terms
    need no fetch, as Mastodon embeds its own; peers preload only the standard contexts
    (ActivityStreams, security, data integrity, Multikey). Documents that name the URL
    are still read here (it stays among :data:`KNOWN_CONTEXTS`). Each call gets its own
    copy."""
    return copy.deepcopy(_coop_terms())


def embedding_coop_terms(context: Any) -> Any:
    """``context`` (a document's ``@context``) with each spelling of
    :data:`COOP_CONTEXT_URL` replaced by the embedded terms: for documents stored before
    they were published so, served again as they are published now."""
    entries = context if isinstance(context, list) else [context]
    if not any(isinstance(e, str) and KNOWN_CONTEXTS.get(e) == "coop-v1.jsonld" for e in entries):
        return context
    return [
        coop_context() if isinstance(e, str) and KNOWN_CONTEXTS.get(e) == "coop-v1.jsonld" else e
        for e in entries
    ]


def offline_document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pyld document loader that answers from ``schemas/contexts`` and nothing else.

    The answer has the shape of a JSON-LD ``RemoteDocument``
    (https://www.w3.org/TR/json-ld11-api/#remotedocument). An unknown URL raises
    ``JsonLdError`` with the standard code ``loading document failed``
    (https://www.w3.org/TR/json-ld11-api/#dom-jsonlderrorcode-loading-document-failed):
    it is never fetched.
    """
    try:
        document = load_context(url)
    except KeyError:
        from pyld.jsonld import JsonLdError

        raise JsonLdError(
            f"{url} is not among the JSON-LD contexts bundled in schemas/contexts; "
            "contexts are never fetched over the network",
            "jsonld.LoadDocumentError",
            {"url": url},
            code="loading document failed",
        ) from None
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": document,
    }


def _options() -> dict[str, Any]:
    # Passed on every call rather than set as pyld's global loader, so that importing
    # this module changes nothing in pyld and no other caller is affected.
    return {"documentLoader": offline_document_loader}


def expand(document: dict[str, Any] | list[Any]) -> list[Any]:
    """Expand ``document`` (https://www.w3.org/TR/json-ld11-api/#expansion-algorithms)."""
    from pyld import jsonld

    expanded: list[Any] = jsonld.expand(document, _options())
    return expanded


def compact(
    document: dict[str, Any] | list[Any], context: str | dict[str, Any] | list[Any]
) -> dict[str, Any]:
    """Compact ``document`` against ``context``
    (https://www.w3.org/TR/json-ld11-api/#compaction-algorithms)."""
    from pyld import jsonld

    compacted: dict[str, Any] = jsonld.compact(document, context, _options())
    return compacted
