"""JPEG: EXIF and XMP from the APP1 segments before the scan."""

from __future__ import annotations

import struct

from provenance.metadata import EXIF_PREFIX, Metadata, keep

_JPEG_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"


def jpeg_walk(*, data: bytes, meta: Metadata) -> None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"expected a JPEG marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD9, 0xDA):  # EOI / start of scan: metadata segments come before
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2 or pos + 2 + length > len(data):
            raise ValueError(f"JPEG segment 0x{marker:02X} runs past the end of the file")
        payload = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xE1 and payload.startswith(EXIF_PREFIX):
            keep(bucket=meta.exif, item=payload)
        elif marker == 0xE1 and payload.startswith(_JPEG_XMP_PREFIX):
            keep(bucket=meta.xmp, item=payload[len(_JPEG_XMP_PREFIX) :])
