"""`coopnode media upload`: the same checks and storage as the API, from a file."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import httpx
from click.testing import CliRunner
from sqlalchemy import select

from node.app import create_app
from node.cli import main
from node.services import media as media_service
from node.settings import load_settings
from node.storage.database import Database
from node.storage.tables import media


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def png() -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x00\x30\x40"))
        + chunk(b"IEND", b"")
    )


def new_node(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    code, output = run(
        "init", "--domain", "coop.example", "--name", "Coop", "--data-dir", str(data)
    )
    assert code == 0, output
    return data


def media_rows(data: Path) -> list[dict[str, object]]:
    db = Database(load_settings(data).database_url, readers=1)
    try:
        return db.read_sync(
            lambda c: [dict(row) for row in c.execute(select(media)).mappings().all()]
        )
    finally:
        db.close()


def test_upload_stores_the_image_and_prints_its_id_and_url(tmp_path: Path) -> None:
    data = new_node(tmp_path)
    photo = tmp_path / "honey.png"
    photo.write_bytes(png())

    code, output = run(
        "media", "upload", str(photo), "--description", "Honey jars", "--data-dir", str(data)
    )

    assert code == 0, output
    key, url = output.strip().split("\t")
    assert url == f"https://coop.example/media/{key}.png"
    assert (data / "media" / f"{key}.png").read_bytes() == png()
    [row] = media_rows(data)
    assert row["key"] == key
    assert row["media_type"] == "image/png"
    assert row["description"] == "Honey jars"
    assert (row["width"], row["height"]) == (2, 2)


def test_an_image_uploaded_from_the_command_line_is_served(tmp_path: Path) -> None:
    data = new_node(tmp_path)
    photo = tmp_path / "honey.png"
    photo.write_bytes(png())
    code, output = run("media", "upload", str(photo), "--data-dir", str(data))
    assert code == 0, output
    key = output.split("\t")[0]

    async def fetch() -> httpx.Response:
        app = create_app(load_settings(data), run_workers=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client,
        ):
            return await client.get(f"https://coop.example/media/{key}.png")

    response = asyncio.run(fetch())

    assert response.status_code == 200
    assert response.content == png()
    assert response.headers["content-type"] == "image/png"


def test_what_is_not_an_image_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    data = new_node(tmp_path)
    page = tmp_path / "photo.png"
    page.write_bytes(b"<html><script>alert(1)</script></html>")

    code, output = run("media", "upload", str(page), "--data-dir", str(data))

    assert code == 1
    assert "not a JPEG, PNG, WebP or GIF image" in output
    assert "HTML" in output
    assert media_rows(data) == []
    assert not media_service.media_root(data).exists()


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    data = new_node(tmp_path)
    photo = tmp_path / "big.png"
    photo.write_bytes(png() + bytes(4096))

    code, output = run(
        "media",
        "upload",
        str(photo),
        "--data-dir",
        str(data),
        env={"COOPNODE_MEDIA_MAX_BYTES": "4096"},
    )

    assert code == 1
    assert "too large" in output
    assert "the limit is 4096 bytes" in output
    assert media_rows(data) == []


def test_a_missing_file_and_a_long_description_are_refused(tmp_path: Path) -> None:
    data = new_node(tmp_path)
    photo = tmp_path / "honey.png"
    photo.write_bytes(png())

    missing = run("media", "upload", str(tmp_path / "nope.png"), "--data-dir", str(data))
    long_text = run(
        "media", "upload", str(photo), "--description", "x" * 1501, "--data-dir", str(data)
    )

    assert missing[0] == 2
    assert "does not exist" in missing[1]
    assert long_text[0] == 1
    assert "longer than 1500 characters" in long_text[1]
    assert media_rows(data) == []
