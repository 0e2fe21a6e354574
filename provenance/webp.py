"""WebP: the EXIF and XMP chunks of the RIFF container."""

from __future__ import annotations

import struct

from provenance.metadata import EXIF_PREFIX, Metadata, keep


def webp_walk(*, data: bytes, meta: Metadata) -> None:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    end = min(len(data), 8 + riff_size)
    pos = 12
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if len(body) < size:
            raise ValueError(f"WebP chunk {fourcc!r} is truncated")
        pos += 8 + size + (size & 1)  # chunks are padded to even sizes
        if fourcc == b"EXIF":
            keep(bucket=meta.exif, item=body if body.startswith(EXIF_PREFIX) else b"Exif\x00\x00" + body)
        elif fourcc == b"XMP ":
            keep(bucket=meta.xmp, item=body)
