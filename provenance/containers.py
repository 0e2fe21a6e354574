"""Which container a file is, and the walk that lifts its metadata out (one module per container)."""

from __future__ import annotations

from provenance.findings import shorten, unreadable_finding
from provenance.jpeg import jpeg_walk
from provenance.metadata import PNG_SIGNATURE, Metadata, keep
from provenance.png import png_walk
from provenance.webp import webp_walk


def mime_sniff(*, data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def container_split(*, data: bytes, mime: str) -> Metadata:
    meta = Metadata()
    walk = {"image/jpeg": jpeg_walk, "image/png": png_walk, "image/webp": webp_walk}[mime]
    try:
        walk(data=data, meta=meta)
    except Exception as exc:  # keep whatever was collected before the damage
        keep(
            bucket=meta.errors,
            item=unreadable_finding(
                key="container",
                value=shorten(str(exc)),
                detail=f"The {mime} file is damaged; later metadata was not read: {shorten(str(exc), limit=200)}",
            ),
        )
    return meta
