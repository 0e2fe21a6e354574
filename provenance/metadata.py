"""The raw metadata blobs a container walk lifts out, with the bounds that keep hostile files cheap."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from provenance.findings import Finding

# Generator text (prompts, ComfyUI graphs) can run to megabytes; a prefix is enough
# to classify it, and keeps hostile chunks from being inflated whole.
MAX_TEXT_BYTES = 64 * 1024


MAX_XMP_BYTES = 4 * 1024 * 1024


# Real files carry one or two blobs per kind; a file stuffed with thousands must not
# cost thousands of parses.
MAX_BLOBS_PER_KIND = 16


EXIF_PREFIX = b"Exif\x00"


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Metadata:
    """Raw metadata blobs lifted out of the container, plus structural problems."""

    exif: list[bytes] = field(default_factory=list)
    xmp: list[bytes] = field(default_factory=list)
    png_text: list[tuple[str, str]] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)


def keep(*, bucket: list[Any], item: Any) -> None:
    if len(bucket) < MAX_BLOBS_PER_KIND:
        bucket.append(item)


def inflate(*, blob: bytes, limit: int) -> bytes:
    # Bounded inflate: a zlib bomb yields at most `limit` bytes.
    return zlib.decompressobj().decompress(blob, limit)
