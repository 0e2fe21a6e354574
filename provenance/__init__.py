"""Provenance evidence from image metadata (C2PA, XMP, EXIF, PNG text), one module per container and
per metadata kind.

Pure module: no Django, no torch. Reads metadata only and never decodes pixels.
Container walking is done here (not by ``Image.open``) so that one corrupt chunk
or segment costs only that source, and every read is bounded. Nothing touches
the network: remote C2PA manifests and OCSP lookups are never fetched.
"""

from __future__ import annotations

from collections.abc import Sequence

from provenance.c2pa_manifest import c2pa_findings
from provenance.containers import container_split, mime_sniff
from provenance.exif import exif_findings
from provenance.findings import MAX_VALUE_CHARS, Finding, guarded, unreadable_finding
from provenance.png_text import png_text_findings
from provenance.xmp import xmp_findings


def provenance_extract(*, data: bytes) -> list[Finding]:
    """Return provenance findings for a JPEG, PNG or WebP file; never raises."""
    mime = mime_sniff(data=data)
    if mime is None:
        return [
            unreadable_finding(
                key="format",
                value=f"{len(data)} bytes",
                detail="Not a JPEG, PNG or WebP file, so no provenance metadata was read.",
            )
        ]
    findings = guarded(source="c2pa", label="C2PA", run=lambda: c2pa_findings(data=data, mime=mime))
    meta = container_split(data=data, mime=mime)
    findings += meta.errors
    for blob in meta.xmp:
        findings += guarded(source="xmp", label="XMP", run=lambda blob=blob: xmp_findings(packet=blob))
    for blob in meta.exif:
        findings += guarded(source="exif", label="EXIF", run=lambda blob=blob: exif_findings(blob=blob))
    findings += guarded(source="png_text", label="PNG text", run=lambda: png_text_findings(chunks=meta.png_text))
    return findings


def declares_ai(*, findings: Sequence[Finding]) -> Finding | None:
    """The finding whose metadata declares generative AI (C2PA trainedAlgorithmicMedia, IPTC
    DigitalSourceType, a generator in EXIF or PNG text), if any. Such metadata flags an image whatever the
    detector says; camera metadata never clears one, since it is easy to forge. The one place this rule is."""
    return next((finding for finding in findings if finding.suggests == "ai"), None)


__all__ = ["MAX_VALUE_CHARS", "Finding", "declares_ai", "provenance_extract", "provenance_summary"]
