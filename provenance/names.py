"""Generator and editor names, IPTC source types: what makes a piece of metadata say "AI", "edited" or
"camera"."""

from __future__ import annotations

import re

from provenance.findings import Finding, shorten

# IPTC digital source type codes (last path segment of the newscodes URL).
_SOURCE_TYPES: dict[str, str] = {
    "trainedAlgorithmicMedia": "ai",
    "compositeWithTrainedAlgorithmicMedia": "ai",
    "algorithmicMedia": "ai",
    "digitalCapture": "camera",
    "computationalCapture": "camera",
    "humanEdits": "edited",
    "minorHumanEdits": "edited",
    "algorithmicallyEnhanced": "edited",
    "composite": "edited",
    "compositeCapture": "edited",
}


# Word-bounded, and ambiguous words ("Firefly", "Imagen", "Flux") need a vendor or
# version next to them so that photo captions like "fireflies at dusk" don't match.
_GENERATORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("DALL-E", r"\bdall[\s·._-]?e\b"),
        ("Midjourney", r"\bmid[\s_-]?journey\b"),
        ("Stable Diffusion", r"\bstable[\s_-]?diffusion\b|\bsdxl\b"),
        ("Adobe Firefly", r"\badobe[\s_-]?firefly\b"),
        ("ComfyUI", r"\bcomfy[\s_-]?ui\b"),
        ("NovelAI", r"\bnovel[\s_-]?ai\b"),
        ("Imagen", r"\bgoogle[\s_-]?imagen\b|\bimagen[\s_-]?\d"),
        ("Flux", r"\bflux(\.1|[\s_-]?(\d|dev|schnell|pro|kontext)\b)|\bblack forest labs\b"),
        ("Automatic1111", r"\bautomatic1111\b"),
        ("InvokeAI", r"\binvoke[\s_-]?ai\b"),
        ("Fooocus", r"\bfooocus\b"),
        ("Leonardo.Ai", r"\bleonardo[\s._-]?ai\b"),
        ("Ideogram", r"\bideogram\b"),
        ("ChatGPT", r"\bchatgpt\b|\bopenai\b|\bgpt-image\b"),
    )
)


_EDITORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("Photoshop", r"\bphotoshop\b"),
        ("Lightroom", r"\blightroom\b"),
        ("GIMP", r"\bgimp\b"),
        ("Affinity Photo", r"\baffinity[\s_-]?photo\b"),
        ("Capture One", r"\bcapture[\s_-]?one\b"),
        ("Luminar", r"\bluminar\b"),
        ("darktable", r"\bdarktable\b"),
        ("RawTherapee", r"\brawtherapee\b"),
        ("Pixelmator", r"\bpixelmator\b"),
        ("Snapseed", r"\bsnapseed\b"),
    )
)


# Stable Diffusion web UIs append "Steps: 20, Sampler: Euler a, CFG scale: 7, ..."
# to the prompt, in PNG "parameters" and in EXIF UserComment of their JPEGs.
_SD_PARAMETERS = re.compile(r"\bSteps: \d+, Sampler: ")


def _classify_name(*, text: str) -> tuple[str, str] | None:
    """Return ("ai" | "edited", matched product) for known generator/editor names."""
    for suggests, table in (("ai", _GENERATORS), ("edited", _EDITORS)):
        for name, pattern in table:
            if pattern.search(text):
                return suggests, name
    return None


def software_finding(*, kind: str, key: str, text: str, label: str) -> Finding:
    """Finding for a free-form software name: generator -> ai, editor -> edited."""
    match = _classify_name(text=text)
    if match is None:
        return Finding(
            kind=kind,
            key=key,
            value=shorten(text),
            suggests="neutral",
            detail=f"{label} names the program that wrote the file.",
        )
    suggests, name = match
    what = "the AI image generator" if suggests == "ai" else "the image editor"
    return Finding(kind=kind, key=key, value=shorten(text), suggests=suggests, detail=f"{label} names {what} {name}.")


def source_type(*, value: str) -> tuple[str, str]:
    """Map an IPTC digital source type URL (or bare code) to (suggests, code)."""
    code = value.strip().rstrip("/").rsplit("/", 1)[-1]
    return _SOURCE_TYPES.get(code, "neutral"), code


def generator_text_reason(*, text: str) -> str | None:
    if _SD_PARAMETERS.search(text):
        return "holds Stable Diffusion generation parameters (steps, sampler)"
    match = _classify_name(text=text)
    if match and match[0] == "ai":
        return f"names the AI image generator {match[1]}"
    return None
