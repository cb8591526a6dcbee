"""Uploaded images: the type from the bytes, the size against a limit."""

from __future__ import annotations

import pytest

from node.errors import Invalid
from node.offers.images import DEFAULT_MAX_IMAGE_BYTES, check_image, check_image_size

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
GIF = b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 64
WEBP = b"RIFF" + (76).to_bytes(4, "little") + b"WEBPVP8 " + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "media_type", "extension"),
    [
        (PNG, "image/png", "png"),
        (JPEG, "image/jpeg", "jpg"),
        (GIF, "image/gif", "gif"),
        (WEBP, "image/webp", "webp"),
    ],
)
def test_the_four_formats_are_recognised_by_their_bytes(
    data: bytes, media_type: str, extension: str
) -> None:
    checked = check_image(data, declared_type="application/octet-stream")

    assert checked.media_type == media_type
    assert checked.extension == extension
    assert checked.size == len(data)


def test_html_sent_as_a_png_is_refused() -> None:
    page = b"<!doctype html><html><script>fetch('/api/token')</script></html>"

    with pytest.raises(Invalid) as raised:
        check_image(page, declared_type="image/png")

    assert raised.value.field == "image"
    assert "not a JPEG, PNG, WebP or GIF" in raised.value.reason
    assert "image/png" in raised.value.reason


def test_svg_is_refused_even_though_it_is_an_image() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'

    with pytest.raises(Invalid):
        check_image(svg, declared_type="image/svg+xml")


def test_the_declared_type_does_not_decide() -> None:
    assert check_image(JPEG, declared_type="image/png").media_type == "image/jpeg"


def test_a_50_mb_image_is_refused() -> None:
    fifty_megabytes = JPEG + b"\x00" * (50 * 1024 * 1024)

    with pytest.raises(Invalid) as raised:
        check_image(fifty_megabytes)

    assert raised.value.field == "image"
    assert "the limit is 10.0 MiB" in raised.value.reason


def test_a_declared_length_is_refused_before_anything_is_read() -> None:
    with pytest.raises(Invalid):
        check_image_size(50 * 1024 * 1024)

    check_image_size(DEFAULT_MAX_IMAGE_BYTES)  # exactly the limit is accepted


def test_the_limit_is_configurable() -> None:
    with pytest.raises(Invalid) as raised:
        check_image(PNG, max_bytes=16)

    assert "the limit is 0.0 MiB" in raised.value.reason
    assert check_image(PNG, max_bytes=len(PNG)).size == len(PNG)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(Invalid) as raised:
        check_image(b"")

    assert "empty" in raised.value.reason
