"""Checking an uploaded image before the node stores and serves it.

The type comes from the file's first bytes, never from the name or the Content-Type
the client declared: an HTML page sent as ``image/png`` and later served from the
node's own origin would run as a page there. Only JPEG, PNG, WebP and GIF are taken.
The size is checked against a limit (10 MiB unless the caller passes another), first
against the declared length when there is one, so an oversized upload can be refused
before it is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.errors import Invalid

DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
}
ALLOWED_TYPES = frozenset(EXTENSIONS)


@dataclass(frozen=True, slots=True)
class CheckedImage:
    media_type: str  # what the bytes are, whatever was declared
    size: int
    extension: str


def check_image_size(size: int, *, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> None:
    """Refuse an upload whose length (declared or measured) is over ``max_bytes``."""
    if size > max_bytes:
        raise Invalid(
            f"the image is {_mebibytes(size)}; the limit is {_mebibytes(max_bytes)}",
            field="image",
        )
    if size <= 0:
        raise Invalid("the image is empty", field="image")


def check_image(
    data: bytes, *, declared_type: str | None = None, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
) -> CheckedImage:
    """The type and size of an uploaded image, or :class:`Invalid` saying why not.

    ``declared_type`` is only used in the message: a file that is not one of the
    allowed formats is refused whatever it claimed to be.
    """
    check_image_size(len(data), max_bytes=max_bytes)
    media_type = sniff_image_type(data)
    if media_type is None:
        claimed = f" (sent as {declared_type})" if declared_type else ""
        raise Invalid(
            f"the file is not a JPEG, PNG, WebP or GIF image{claimed}",
            field="image",
        )
    return CheckedImage(media_type=media_type, size=len(data), extension=EXTENSIONS[media_type])


def sniff_image_type(data: bytes) -> str | None:
    """The image type the leading bytes announce, or ``None``.

    Signatures: JPEG starts with the SOI marker FF D8 FF; PNG with its fixed 8-byte
    signature; GIF with "GIF87a" or "GIF89a"; WebP is a RIFF container whose form type
    at offset 8 is "WEBP".
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _mebibytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
