"""Reading a body from a peer without letting its size hurt us."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable


async def read_capped(
    chunks: AsyncIterable[bytes],
    *,
    declared: str | None,
    limit: int,
    too_large: Callable[[str], Exception],
) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes.

    A ``Content-Length`` over the limit is refused before anything is read; a body that
    lies about its length, or has none, is cut off while it is read. ``too_large`` gets
    a short description ("declares N bytes" or "sent more than N bytes") and returns
    the exception to raise.
    """
    refuse_declared(declared, limit=limit, too_large=too_large)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(f"sent more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def refuse_declared(
    declared: str | None, *, limit: int, too_large: Callable[[str], Exception]
) -> None:
    """Refuse a ``Content-Length`` over ``limit`` before anything is read (as
    :func:`read_capped` does)."""
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(f"declares {declared} bytes, over {limit}")
