"""EXIF: the camera (Make, Model), the writing software, and generator text in free-form fields."""

from __future__ import annotations

from typing import Any

from PIL import Image

from provenance.findings import FORGEABLE, Finding, shorten
from provenance.names import generator_text_reason, software_finding

_EXIF_SOFTWARE, _EXIF_MAKE, _EXIF_MODEL = 0x0131, 0x010F, 0x0110
_EXIF_DESCRIPTION, _EXIF_ARTIST = 0x010E, 0x013B
_EXIF_IFD, _EXIF_USER_COMMENT = 0x8769, 0x9286
# How the photograph was taken, shown to the moderator beside the image; neutral on its own.
_CAPTURE_TAGS = (
    (0xA434, "LensModel"),
    (0x9003, "DateTimeOriginal"),
    (0x829A, "ExposureTime"),
    (0x829D, "FNumber"),
    (0x8827, "ISOSpeedRatings"),
)


def _exif_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).replace("\x00", "").strip()


def _user_comment(*, raw: Any, endian: str | None) -> str:
    # UserComment starts with an 8-byte character-code header (EXIF 2.3 §4.6.5).
    if not isinstance(raw, bytes):
        return _exif_text(raw)
    header, body = raw[:8], raw[8:]
    if header.startswith(b"UNICODE"):
        return body.decode("utf-16-le" if endian == "<" else "utf-16-be", errors="replace").replace("\x00", "").strip()
    return _exif_text(body if header.rstrip(b"\x00") in (b"ASCII", b"JIS", b"") else raw)


def exif_findings(*, blob: bytes) -> list[Finding]:
    exif = Image.Exif()
    exif.load(blob)
    findings: list[Finding] = []

    software = _exif_text(exif.get(_EXIF_SOFTWARE, ""))
    if software:
        findings.append(software_finding(kind="exif", key="Software", text=software, label="EXIF Software"))

    for tag, key in ((_EXIF_MAKE, "Make"), (_EXIF_MODEL, "Model")):
        value = _exif_text(exif.get(tag, ""))
        if value:
            findings.append(
                Finding(
                    kind="exif",
                    key=key,
                    value=shorten(value),
                    suggests="camera",
                    detail=f"EXIF {key} names a camera ({shorten(value, limit=80)}), but {FORGEABLE}.",
                )
            )

    tags = {**dict(exif), **dict(exif.get_ifd(_EXIF_IFD))}
    for tag, key in _CAPTURE_TAGS:
        value = _exif_text(tags.get(tag, ""))
        if value:
            findings.append(
                Finding(kind="exif", key=key, value=shorten(value), suggests="neutral", detail=f"EXIF {key}: {value}.")
            )

    free_text = [
        ("ImageDescription", _exif_text(exif.get(_EXIF_DESCRIPTION, ""))),
        ("Artist", _exif_text(exif.get(_EXIF_ARTIST, ""))),
        ("UserComment", _user_comment(raw=exif.get_ifd(_EXIF_IFD).get(_EXIF_USER_COMMENT, b""), endian=exif.endian)),
    ]
    for key, text in free_text:
        reason = generator_text_reason(text=text)
        if reason:
            findings.append(
                Finding(kind="exif", key=key, value=shorten(text), suggests="ai", detail=f"EXIF {key} {reason}.")
            )
    return findings
