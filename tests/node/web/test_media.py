"""Images: uploaded through the API, refused when too large or not images (with nothing
stored), and served back byte for byte with headers that keep them images."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from node.services import media as media_service
from node.settings import Settings, SettingsError, load_settings, write_config
from node.storage.tables import media
from tests.support.network import Network, TestNode

# --- images built byte by byte ----------------------------------------------------------


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png(width: int = 3, height: int = 2) -> bytes:
    """A valid greyscale PNG: signature, IHDR, one IDAT (each row: filter 0, then
    pixels), IEND."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes(x % 256 for x in range(width)) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(width: int = 5, height: int = 4) -> bytes:
    """A valid baseline greyscale JPEG of one flat 8x8 block (any size up to 8x8): the
    DC difference 0 and an end-of-block, each coded with a one-bit Huffman code."""
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    quantisation = b"\x00" + bytes([1] * 64)
    frame = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    one_symbol = bytes([1] + [0] * 15)  # one code of length 1...
    dc_table = b"\x00" + one_symbol + b"\x00"  # ...for category 0
    ac_table = b"\x10" + one_symbol + b"\x00"  # ...for end-of-block
    scan = b"\x01\x01\x00\x00\x3f\x00"
    return (
        b"\xff\xd8"
        + _jpeg_segment(0xE0, jfif)
        + _jpeg_segment(0xDB, quantisation)
        + _jpeg_segment(0xC0, frame)
        + _jpeg_segment(0xC4, dc_table)
        + _jpeg_segment(0xC4, ac_table)
        + _jpeg_segment(0xDA, scan)
        + b"\x3f"  # bits 0 (DC) and 0 (EOB), padded with ones
        + b"\xff\xd9"
    )


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def webp(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


HTML = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'


# --- helpers ----------------------------------------------------------------------------


async def upload(
    coop: TestNode,
    body: bytes,
    content_type: str = "image/png",
    *,
    query: str = "",
    auth: bool = True,
) -> httpx.Response:
    headers = {"Content-Type": content_type, **(coop.auth if auth else {})}
    return await coop.request("POST", "/api/v1/media" + query, headers=headers, content=body)


async def stored_rows(coop: TestNode) -> int:
    return int(
        await coop.node.db.read(
            lambda c: c.execute(select(func.count()).select_from(media)).scalar_one()
        )
    )


def stored_files(coop: TestNode) -> list[str]:
    root = media_service.media_root(coop.settings.data_dir)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def assert_nothing_stored(coop: TestNode) -> None:
    assert await stored_rows(coop) == 0
    assert stored_files(coop) == []


# --- uploading and serving --------------------------------------------------------------


async def test_a_png_is_stored_and_served_back_byte_for_byte(network: Network) -> None:
    coop = await network.add("alpha.test")
    image = png(3, 2)

    response = await coop.request(
        "POST",
        "/api/v1/media",
        params={"description": "  Three jars of honey on a shelf  "},
        headers={**coop.auth, "Content-Type": "image/png"},
        content=image,
    )

    assert response.status_code == 201, response.text
    document = response.json()
    key = document["id"]
    assert document == {
        "id": key,
        "url": f"https://alpha.test/media/{key}.png",
        "media_type": "image/png",
        "size": len(image),
        "width": 3,
        "height": 2,
        "description": "Three jars of honey on a shelf",
    }
    assert response.headers["location"] == document["url"]

    served = await coop.get(f"/media/{key}.png")

    assert served.status_code == 200
    assert served.content == image
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-length"] == str(len(image))
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"].startswith("default-src 'none'")
    assert served.headers["etag"] == f'"{hashlib.sha256(image).hexdigest()}"'

    again = await coop.get(f"/media/{key}.png", headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    head = await coop.request("HEAD", f"/media/{key}.png")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(image))


async def test_the_stored_type_comes_from_the_bytes_not_the_declared_type(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")
    image = jpeg(5, 4)

    response = await upload(coop, image, "image/png")

    assert response.status_code == 201
    document = response.json()
    assert document["media_type"] == "image/jpeg"
    assert document["url"].endswith(f"/media/{document['id']}.jpg")
    assert (document["width"], document["height"]) == (5, 4)
    assert document["description"] == ""
    served = await coop.get(f"/media/{document['id']}.jpg")
    assert served.content == image
    assert served.headers["content-type"] == "image/jpeg"
    # The same key under another extension is not served.
    assert (await coop.get(f"/media/{document['id']}.png")).status_code == 404


async def test_files_are_private_to_the_node_and_no_temporary_file_is_left(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")

    document = (await upload(coop, png())).json()

    root = media_service.media_root(coop.settings.data_dir)
    assert root.stat().st_mode & 0o777 == 0o700
    assert stored_files(coop) == [f"{document['id']}.png"]
    assert (root / f"{document['id']}.png").stat().st_mode & 0o777 == 0o600


# --- refusals, with nothing stored ------------------------------------------------------


async def test_a_declared_50_mb_upload_is_refused_before_it_is_read(network: Network) -> None:
    coop = await network.add("alpha.test")
    sent = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(50):
            sent += 1
            yield b"\x89PNG\r\n\x1a\n" + bytes(1024 * 1024 - 8)

    response = await coop.request(
        "POST",
        "/api/v1/media",
        headers={**coop.auth, "Content-Type": "image/png", "Content-Length": str(50 * 1024**2)},
        content=fifty_megabytes(),
    )

    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "declares 52428800 bytes" in response.json()["reason"]
    assert "10.0 MiB" in response.json()["reason"]
    assert sent <= 1  # refused on the header; at most the transport's first chunk
    await assert_nothing_stored(coop)


async def test_an_oversized_body_without_a_length_is_cut_off_while_read(
    network: Network,
) -> None:
    coop = await network.add("alpha.test", media_max_bytes=64 * 1024)
    sent = 0

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield png() + bytes(16 * 1024)

    response = await coop.request(
        "POST",
        "/api/v1/media",
        headers={**coop.auth, "Content-Type": "image/png"},
        content=chunked(),
    )

    assert response.status_code == 413
    assert "sent more than 65536 bytes" in response.json()["reason"]
    assert sent < 10
    await assert_nothing_stored(coop)


async def test_a_body_just_over_the_limit_is_refused_and_one_at_it_is_taken(
    network: Network,
) -> None:
    image = png()
    coop = await network.add("alpha.test", media_max_bytes=len(image))

    assert (await upload(coop, image + b"\x00")).status_code == 413
    await assert_nothing_stored(coop)
    assert (await upload(coop, image)).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (HTML, "image/png", "an HTML page"),
        (SVG, "image/svg+xml", "SVG"),
        (b"%PDF-1.7\n...", "image/jpeg", "a PDF document"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic", "HEIC"),
        (b"just some text", "application/octet-stream", "no known image format"),
    ],
)
async def test_what_is_not_an_image_is_refused_as_unsupported(
    network: Network, body: bytes, content_type: str, said: str
) -> None:
    coop = await network.add("alpha.test")

    response = await upload(coop, body, content_type)

    assert response.status_code == 415
    error = response.json()
    assert error["error"] == "unsupported_media_type"
    assert error["field"] == "image"
    assert said in error["reason"]
    assert f"sent as {content_type}" in error["reason"]
    await assert_nothing_stored(coop)


async def test_an_empty_body_too_long_a_description_and_unknown_parameters_are_invalid(
    network: Network,
) -> None:
    coop = await network.add("alpha.test")

    empty = await upload(coop, b"")
    long_text = await upload(coop, png(), query="?description=" + "x" * 1501)
    unknown = await upload(coop, png(), query="?alt=honey")

    assert empty.status_code == 422
    assert empty.json()["reason"] == "the image is empty"
    assert long_text.status_code == 422
    assert long_text.json()["field"] == "description"
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "alt"
    await assert_nothing_stored(coop)
    ok = await upload(coop, png(), query="?description=" + "é" * 1500)
    assert ok.status_code == 201


async def test_control_characters_are_dropped_from_the_description(network: Network) -> None:
    coop = await network.add("alpha.test")

    response = await coop.request(
        "POST",
        "/api/v1/media",
        params={"description": "Honey\x07 jars\r\non a shelf\x1b"},
        headers={**coop.auth, "Content-Type": "image/png"},
        content=png(),
    )

    assert response.status_code == 201
    assert response.json()["description"] == "Honey jars\non a shelf"
    # A NUL in a URL is refused before anything is read (no column could hold it).
    refused = await coop.request(
        "POST",
        "/api/v1/media",
        params={"description": "Honey\x00 jars"},
        headers={**coop.auth, "Content-Type": "image/png"},
        content=png(),
    )
    assert refused.status_code == 400


async def test_an_upload_without_a_valid_token_is_refused(network: Network) -> None:
    coop = await network.add("alpha.test")

    anonymous = await upload(coop, png(), auth=False)
    forged = await coop.request(
        "POST",
        "/api/v1/media",
        headers={"Authorization": "Bearer cn_forged", "Content-Type": "image/png"},
        content=png(),
    )

    assert anonymous.status_code == 401
    assert forged.status_code == 401
    await assert_nothing_stored(coop)


async def test_a_failed_insert_leaves_no_file(
    network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop = await network.add("alpha.test")

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database is gone")

    monkeypatch.setattr(media_service, "insert_row", refuse)

    with pytest.raises(RuntimeError, match="gone"):
        await media_service.store(
            coop.node.db,
            coop.settings.data_dir,
            png(),
            actor_id=coop.node.peers.coop_id,
            now=network.clock.now(),
            max_bytes=1024,
        )
    await assert_nothing_stored(coop)


# --- serving: only what the table names -------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/media/AAAAAAAAAAAAAAAAAAAAAA.png",  # the shape of a key, but none stored
        "/media/secret.png",
        "/media/..%2Fsecret.png",
        "/media/%2e%2e%2fsecret.png",
        "/media/..%5Csecret.png",
        "/media/.png",
        "/media/nothing",
        "/media/",
    ],
)
async def test_only_stored_keys_are_served(network: Network, path: str) -> None:
    coop = await network.add("alpha.test")
    await upload(coop, png())
    (coop.settings.data_dir / "secret.png").write_bytes(png())
    root = media_service.media_root(coop.settings.data_dir)
    (root / "AAAAAAAAAAAAAAAAAAAAAA.png").write_bytes(png())
    (root / "secret.png").write_bytes(png())

    response = await coop.get(path)

    assert response.status_code == 404


async def test_a_deleted_or_missing_file_is_not_found(network: Network) -> None:
    coop = await network.add("alpha.test")
    first = (await upload(coop, png())).json()
    second = (await upload(coop, jpeg())).json()

    assert await media_service.delete(coop.node.db, coop.settings.data_dir, first["id"])
    (media_service.media_root(coop.settings.data_dir) / f"{second['id']}.jpg").unlink()

    assert (await coop.get(f"/media/{first['id']}.png")).status_code == 404
    assert (await coop.get(f"/media/{second['id']}.jpg")).status_code == 404
    assert stored_files(coop) == []
    assert await stored_rows(coop) == 1
    assert not await media_service.delete(coop.node.db, coop.settings.data_dir, first["id"])


# --- reading dimensions from headers ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type", "size"),
    [
        (png(640, 480), "image/png", (640, 480)),
        (jpeg(7, 3), "image/jpeg", (7, 3)),
        (gif(300, 200), "image/gif", (300, 200)),
        (
            webp(b"VP8 ", b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 1024, 768)),
            "image/webp",
            (1024, 768),
        ),
        (
            webp(b"VP8L", b"\x2f" + ((800 - 1) | ((600 - 1) << 14)).to_bytes(4, "little")),
            "image/webp",
            (800, 600),
        ),
        (
            webp(
                b"VP8X",
                b"\x00\x00\x00\x00"
                + (4000 - 1).to_bytes(3, "little")
                + (3000 - 1).to_bytes(3, "little"),
            ),
            "image/webp",
            (4000, 3000),
        ),
        (png()[:20], "image/png", None),  # cut inside IHDR
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", None),  # no frame header
        (b"\xff\xd8\xff\xda\x00\x02", "image/jpeg", None),  # a scan before any frame
        (gif(0, 10), "image/gif", None),
        (webp(b"VP8 ", b"\x00" * 10), "image/webp", None),
    ],
)
def test_dimensions_come_from_the_header(
    data: bytes, media_type: str, size: tuple[int, int] | None
) -> None:
    assert media_service.image_dimensions(data, media_type) == size


# --- the size limit is a setting --------------------------------------------------------


def test_the_size_limit_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, domain="coop.example", name="Coop")
    assert settings.media_max_bytes == 10 * 1024 * 1024
    write_config(settings)
    assert "media_max_bytes = 10485760" in settings.config_path.read_text()

    assert load_settings(tmp_path, environ={}).media_max_bytes == 10 * 1024 * 1024
    from_env = load_settings(tmp_path, environ={"COOPNODE_MEDIA_MAX_BYTES": "2048"})
    assert from_env.media_max_bytes == 2048
    for bad in ("ten", "-5", "0", str(200 * 1024 * 1024)):
        with pytest.raises(SettingsError, match=r"(?i)media_max_bytes"):
            load_settings(tmp_path, environ={"COOPNODE_MEDIA_MAX_BYTES": bad})
