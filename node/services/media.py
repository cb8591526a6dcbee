"""Images members upload (offer photos): checked, written to disk, recorded, served.

A file lives at ``DATA_DIR/media/<key>.<ext>``, where ``key`` is random and URL-safe
and ``ext`` follows the type the bytes announce (never the name or the declared
Content-Type). The ``media`` table holds what the node serves it with: its type, size,
SHA-256 (the ETag), dimensions and alt text. A path is only ever built from a key read
back from the table, so nothing a request says reaches the file system.

The file is written first (a temporary file, fsync, then an atomic rename) and the row
second; if the row cannot be written the file is removed. A crash between the two
leaves at worst a file no row names, which nothing serves. Nothing is written for an
upload that is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import RowMapping, insert, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.engine import Connection

from node.errors import Invalid, TooLarge, UnsupportedMedia
from node.offers.images import EXTENSIONS, CheckedImage, check_image, sniff_image_type
from node.offers.model import MAX_IMAGE_DESCRIPTION_LENGTH
from node.storage.database import Database
from node.storage.tables import media

MEDIA_DIR = "media"
# secrets.token_urlsafe(16): 22 characters of [A-Za-z0-9_-], 128 random bits.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True, slots=True)
class Media:
    key: str
    actor_id: int
    media_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    description: str
    created_at: datetime

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.media_type]

    @property
    def file_name(self) -> str:
        return f"{self.key}.{self.extension}"


def new_key() -> str:
    return secrets.token_urlsafe(16)


def media_root(data_dir: Path) -> Path:
    return Path(data_dir) / MEDIA_DIR


def file_path(data_dir: Path, item: Media) -> Path:
    return media_root(data_dir) / item.file_name


# --- checking ---------------------------------------------------------------------------


def check_upload(
    data: bytes, *, declared_type: str | None, max_bytes: int
) -> tuple[CheckedImage, tuple[int, int] | None]:
    """The checked image and its dimensions (when its header gives them), or why not:
    :class:`TooLarge` (413), :class:`UnsupportedMedia` (415), :class:`Invalid` (422)."""
    if len(data) > max_bytes:
        raise TooLarge(too_large_reason(f"it is {len(data)} bytes", max_bytes), field="image")
    if not data:
        raise Invalid("the image is empty", field="image")
    if sniff_image_type(data) is None:
        claimed = f" (sent as {declared_type})" if declared_type else ""
        raise UnsupportedMedia(
            f"the file is not a JPEG, PNG, WebP or GIF image{claimed}: "
            f"its bytes look like {describe_bytes(data)}",
            field="image",
        )
    checked = check_image(data, declared_type=declared_type, max_bytes=max_bytes)
    return checked, image_dimensions(data, checked.media_type)


def too_large_reason(what: str, max_bytes: int) -> str:
    mebibytes = max_bytes / (1024 * 1024)
    return f"the image is too large: {what}; the limit is {max_bytes} bytes ({mebibytes:.1f} MiB)"


# Control characters other than tab and line breaks (as offers' texts drop them).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_description(value: str | None) -> str:
    """The alt text, without control characters, or :class:`Invalid` if too long."""
    description = _CONTROL.sub("", value or "").replace("\r\n", "\n").strip()
    if len(description) > MAX_IMAGE_DESCRIPTION_LENGTH:
        raise Invalid(
            f"the description is longer than {MAX_IMAGE_DESCRIPTION_LENGTH} characters",
            field="description",
        )
    try:
        description.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("the description is not valid text", field="description") from None
    return description


def describe_bytes(data: bytes) -> str:
    """What a refused file seems to be, for the error message."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<svg") or (head.startswith(b"<") and b"<svg" in head):
        return "an SVG image, which is refused because it can carry scripts"
    if head.startswith((b"<!doctype html", b"<html")) or b"<script" in head:
        return "an HTML page"
    if head.startswith(b"<"):
        return "HTML or XML text"
    if data.startswith(b"%PDF-"):
        return "a PDF document"
    if data.startswith(b"PK\x03\x04"):
        return "a ZIP archive (or an office document)"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
            return "a HEIC/HEIF photo; export it as JPEG"
        if brand in (b"avif", b"avis"):
            return "an AVIF image; export it as JPEG or WebP"
        return "a video or other ISO media file"
    if data.startswith(b"BM"):
        return "a BMP image; convert it to PNG"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image; convert it to JPEG or PNG"
    return "no known image format"


# --- dimensions -------------------------------------------------------------------------


def image_dimensions(data: bytes, media_type: str) -> tuple[int, int] | None:
    """Width and height from the image's header, or ``None`` if it does not give them
    plainly. Only the header is read: nothing is decoded."""
    try:
        if media_type == "image/png":
            return _png_size(data)
        if media_type == "image/gif":
            return _gif_size(data)
        if media_type == "image/webp":
            return _webp_size(data)
        if media_type == "image/jpeg":
            return _jpeg_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The signature, then the IHDR chunk: length, "IHDR", width, height (big-endian).
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return _positive(width, height)


def _gif_size(data: bytes) -> tuple[int, int] | None:
    # The logical screen descriptor follows the 6-byte signature (little-endian).
    width, height = struct.unpack("<HH", data[6:10])
    return _positive(width, height)


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Lossy: a frame tag (3 bytes) and start code 9D 01 2A, then 14-bit sizes.
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return _positive(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        # Lossless: signature byte 0x2F, then 14 bits of width-1 and 14 of height-1.
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        # Extended: 24-bit canvas width-1 and height-1 after 4 bytes of flags.
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _positive(width, height)
    return None


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2  # after SOI
    end = len(data)
    while position + 4 <= end:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or start of scan before any frame
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return _positive(width, height)
        position += 2 + length
    return None


# --- files and rows ---------------------------------------------------------------------


def write_file(root: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``root/name`` atomically: readers see the whole file or none.

    The directory is made private to the node's user (0700), the file 0600: the node
    serves them itself, nothing else needs to read them.
    """
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = root / name
    temporary = root / f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_directory(root)
    return path


def _fsync_directory(root: Path) -> None:
    # The rename is durable once the directory entry is (not possible on every system).
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def insert_row(
    conn: Connection,
    *,
    key: str,
    actor_id: int,
    checked: CheckedImage,
    sha256: str,
    dimensions: tuple[int, int] | None,
    description: str,
    now: datetime,
) -> Media:
    width, height = dimensions if dimensions is not None else (None, None)
    values = {
        "key": key,
        "actor_id": actor_id,
        "media_type": checked.media_type,
        "size": checked.size,
        "sha256": sha256,
        "width": width,
        "height": height,
        "description": description,
        "created_at": now,
    }
    conn.execute(insert(media).values(**values))
    return Media(
        key=key,
        actor_id=actor_id,
        media_type=checked.media_type,
        size=checked.size,
        sha256=sha256,
        width=width,
        height=height,
        description=description,
        created_at=now,
    )


def find(conn: Connection, key: str) -> Media | None:
    if not KEY_PATTERN.match(key):
        return None
    row = conn.execute(select(media).where(media.c.key == key)).mappings().first()
    return None if row is None else _media(row)


def delete_row(conn: Connection, key: str) -> Media | None:
    """Remove the row of ``key``; the removed item (for its file), or ``None``."""
    found = find(conn, key)
    if found is not None:
        conn.execute(sql_delete(media).where(media.c.key == key))
    return found


def _media(row: RowMapping) -> Media:
    return Media(
        key=row["key"],
        actor_id=row["actor_id"],
        media_type=row["media_type"],
        size=row["size"],
        sha256=row["sha256"],
        width=row["width"],
        height=row["height"],
        description=row["description"],
        created_at=row["created_at"],
    )


# --- what the API and the command line call ---------------------------------------------


async def store(
    db: Database,
    data_dir: Path,
    data: bytes,
    *,
    actor_id: int,
    now: datetime,
    declared_type: str | None = None,
    description: str | None = None,
    max_bytes: int,
) -> Media:
    """Check ``data``, write it under ``data_dir/media`` and record it for ``actor_id``.

    Refusals (see :func:`check_upload`) happen before anything is written.
    """
    text = check_description(description)
    checked, dimensions = check_upload(data, declared_type=declared_type, max_bytes=max_bytes)
    key = new_key()

    def save() -> tuple[str, Path]:
        # Hashing and writing up to the size limit: off the event loop.
        digest = hashlib.sha256(data).hexdigest()
        return digest, write_file(media_root(data_dir), f"{key}.{checked.extension}", data)

    sha256, path = await asyncio.to_thread(save)
    try:
        return await db.write(
            lambda conn: insert_row(
                conn,
                key=key,
                actor_id=actor_id,
                checked=checked,
                sha256=sha256,
                dimensions=dimensions,
                description=text,
                now=now,
            )
        )
    except Exception:
        # Not on cancellation: the writer may still commit the row, which needs its file.
        await asyncio.to_thread(_unlink, path)
        raise


async def delete(db: Database, data_dir: Path, key: str) -> bool:
    """Remove a stored image, row then file; whether there was one."""
    removed = await db.write(lambda conn: delete_row(conn, key))
    if removed is None:
        return False
    await asyncio.to_thread(_unlink, file_path(data_dir, removed))
    return True


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
