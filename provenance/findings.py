"""What a provenance reader reports: one Finding per piece of evidence, and the guard that turns a
source's failure into an "unreadable" finding instead of an exception."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MAX_VALUE_CHARS = 500


MAX_FINDINGS_PER_SOURCE = 20


FORGEABLE = "metadata is trivially edited, so this never proves a photograph on its own"


@dataclass(frozen=True)
class Finding:
    kind: str  # "c2pa" | "xmp" | "exif" | "png_text" | "error"
    key: str
    value: str
    suggests: str  # "ai" | "camera" | "edited" | "neutral" | "unreadable"
    detail: str


def shorten(text: str, *, limit: int = MAX_VALUE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def unreadable_finding(*, key: str, value: str, detail: str) -> Finding:
    return Finding(kind="error", key=key, value=value, suggests="unreadable", detail=detail)


def guarded(*, source: str, label: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one source; an exception becomes an "unreadable" finding instead of escaping."""
    try:
        return run()[:MAX_FINDINGS_PER_SOURCE]
    except Exception as exc:  # hostile input must never take the request down
        return [
            unreadable_finding(
                key=source,
                value=shorten(f"{type(exc).__name__}: {exc}"),
                detail=f"{label} metadata could not be read; the other metadata sources were still checked.",
            )
        ]
