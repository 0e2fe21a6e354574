"""PNG: eXIf, and tEXt/zTXt/iTXt chunks (XMP among them), anywhere in the file."""

from __future__ import annotations

import struct
import zlib

from provenance.findings import shorten, unreadable_finding
from provenance.metadata import (
    MAX_BLOBS_PER_KIND,
    MAX_TEXT_BYTES,
    MAX_XMP_BYTES,
    PNG_SIGNATURE,
    Metadata,
    inflate,
    keep,
)


def png_walk(*, data: bytes, meta: Metadata) -> None:
    # Walk every chunk (text may follow IDAT) without verifying CRCs or touching IDAT.
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"PNG chunk {ctype!r} is truncated")
        pos += 12 + length
        if ctype == b"IEND":
            return
        if ctype == b"eXIf":
            keep(bucket=meta.exif, item=b"Exif\x00\x00" + body)
        elif ctype in (b"tEXt", b"zTXt", b"iTXt") and len(meta.png_text) < MAX_BLOBS_PER_KIND:
            try:
                key, text = _png_text_chunk(ctype=ctype, body=body)
            except (ValueError, zlib.error) as exc:
                keep(
                    bucket=meta.errors,
                    item=unreadable_finding(
                        key="png_text",
                        value=shorten(f"{ctype.decode('latin-1')}: {exc}"),
                        detail=f"A PNG {ctype.decode('latin-1')} chunk is malformed and was skipped.",
                    ),
                )
                continue
            if key == "XML:com.adobe.xmp":
                keep(bucket=meta.xmp, item=text.encode("utf-8"))
            else:
                meta.png_text.append((key, text))


def _png_text_chunk(*, ctype: bytes, body: bytes) -> tuple[str, str]:
    key_bytes, sep, rest = body.partition(b"\x00")
    if not sep or not 1 <= len(key_bytes) <= 79:
        raise ValueError("missing or invalid keyword")
    key = key_bytes.decode("latin-1")
    limit = MAX_XMP_BYTES if key == "XML:com.adobe.xmp" else MAX_TEXT_BYTES
    if ctype == b"tEXt":
        return key, rest[:limit].decode("latin-1")
    if ctype == b"zTXt":
        return key, inflate(blob=rest[1:], limit=limit).decode("latin-1")
    if len(rest) < 2:
        raise ValueError("iTXt chunk too short")
    compressed = rest[0] == 1
    _language, sep1, rest = rest[2:].partition(b"\x00")
    _translated, sep2, text = rest.partition(b"\x00")
    if not (sep1 and sep2):
        raise ValueError("iTXt chunk is missing its language fields")
    raw = inflate(blob=text, limit=limit) if compressed else text[:limit]
    return key, raw.decode("utf-8", errors="replace")
