"""Provenance evidence extraction from image metadata (C2PA, XMP, EXIF, PNG text).

Pure module: no Django, no torch. Reads metadata only and never decodes pixels.
Container walking is done here (not by ``Image.open``) so that one corrupt chunk
or segment costs only that source, and every read is bounded. Nothing touches
the network: remote C2PA manifests and OCSP lookups are never fetched.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import c2pa
from PIL import Image

MAX_VALUE_CHARS = 500
# Generator text (prompts, ComfyUI graphs) can run to megabytes; a prefix is enough
# to classify it, and keeps hostile chunks from being inflated whole.
MAX_TEXT_BYTES = 64 * 1024
MAX_XMP_BYTES = 4 * 1024 * 1024
MAX_FINDINGS_PER_SOURCE = 20
# Real files carry one or two blobs per kind; a file stuffed with thousands must not
# cost thousands of parses.
MAX_BLOBS_PER_KIND = 16

_C2PA_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_UNTRUSTED = "signingCredential.untrusted"

_NS_IPTC_EXT = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"
_NS_XMP = "{http://ns.adobe.com/xap/1.0/}"
_NS_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"

_JPEG_EXIF_PREFIX = b"Exif\x00"
_JPEG_XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_EXIF_SOFTWARE, _EXIF_MAKE, _EXIF_MODEL = 0x0131, 0x010F, 0x0110
_EXIF_DESCRIPTION, _EXIF_ARTIST = 0x010E, 0x013B
_EXIF_IFD, _EXIF_USER_COMMENT = 0x8769, 0x9286

_FORGEABLE = "metadata is trivially edited, so this never proves a photograph on its own"

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

# PNG text keys that only image generators write.
_GENERATOR_PNG_KEYS: dict[str, str] = {
    "parameters": "Stable Diffusion web UI generation parameters",
    "prompt": "ComfyUI prompt graph",
    "workflow": "ComfyUI workflow",
    "invokeai_metadata": "InvokeAI generation metadata",
    "invokeai_graph": "InvokeAI graph",
    "sd-metadata": "InvokeAI generation metadata",
    "Dream": "InvokeAI (dream) generation command",
}
# Free-form keys checked for generator names (NovelAI writes Software/Source/Comment).
_FREE_TEXT_PNG_KEYS = frozenset({"Comment", "Description", "Source", "Title", "Author"})


@dataclass(frozen=True)
class Finding:
    kind: str  # "c2pa" | "xmp" | "exif" | "png_text" | "error"
    key: str
    value: str
    suggests: str  # "ai" | "camera" | "edited" | "neutral" | "unreadable"
    detail: str


@dataclass
class _Metadata:
    """Raw metadata blobs lifted out of the container, plus structural problems."""

    exif: list[bytes] = field(default_factory=list)
    xmp: list[bytes] = field(default_factory=list)
    png_text: list[tuple[str, str]] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)


def _keep(*, bucket: list[Any], item: Any) -> None:
    if len(bucket) < MAX_BLOBS_PER_KIND:
        bucket.append(item)


def provenance_extract(*, data: bytes) -> list[Finding]:
    """Return provenance findings for a JPEG, PNG or WebP file; never raises."""
    mime = _sniff_mime(data=data)
    if mime is None:
        return [
            _error(
                key="format",
                value=f"{len(data)} bytes",
                detail="Not a JPEG, PNG or WebP file, so no provenance metadata was read.",
            )
        ]
    findings = _guarded(source="c2pa", label="C2PA", run=lambda: _c2pa_findings(data=data, mime=mime))
    meta = _split_container(data=data, mime=mime)
    findings += meta.errors
    for blob in meta.xmp:
        findings += _guarded(source="xmp", label="XMP", run=lambda blob=blob: _xmp_findings(packet=blob))
    for blob in meta.exif:
        findings += _guarded(source="exif", label="EXIF", run=lambda blob=blob: _exif_findings(blob=blob))
    findings += _guarded(source="png_text", label="PNG text", run=lambda: _png_text_findings(chunks=meta.png_text))
    return findings


def provenance_summary(*, findings: Sequence[Finding]) -> str:
    """Collapse findings into "ai", "camera" or "none".

    Any AI finding wins. "camera" only means camera metadata was present and nothing
    suggested AI: EXIF/XMP camera fields are trivially forged, so camera metadata never
    clears an image on its own. The caller force-flags "ai" and should show "camera"
    only as context (e.g. a conflict with a detector score), never as an exoneration.
    """
    suggestions = {finding.suggests for finding in findings}
    if "ai" in suggestions:
        return "ai"
    if "camera" in suggestions:
        return "camera"
    return "none"


# --- helpers -------------------------------------------------------------------------


def _short(text: str, *, limit: int = MAX_VALUE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(*, key: str, value: str, detail: str) -> Finding:
    return Finding(kind="error", key=key, value=value, suggests="unreadable", detail=detail)


def _guarded(*, source: str, label: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    """Run one source; an exception becomes an "unreadable" finding instead of escaping."""
    try:
        return run()[:MAX_FINDINGS_PER_SOURCE]
    except Exception as exc:  # hostile input must never take the request down
        return [
            _error(
                key=source,
                value=_short(f"{type(exc).__name__}: {exc}"),
                detail=f"{label} metadata could not be read; the other metadata sources were still checked.",
            )
        ]


def _sniff_mime(*, data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(_PNG_SIGNATURE):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _classify_name(*, text: str) -> tuple[str, str] | None:
    """Return ("ai" | "edited", matched product) for known generator/editor names."""
    for suggests, table in (("ai", _GENERATORS), ("edited", _EDITORS)):
        for name, pattern in table:
            if pattern.search(text):
                return suggests, name
    return None


def _software_finding(*, kind: str, key: str, text: str, label: str) -> Finding:
    """Finding for a free-form software name: generator -> ai, editor -> edited."""
    match = _classify_name(text=text)
    if match is None:
        return Finding(
            kind=kind,
            key=key,
            value=_short(text),
            suggests="neutral",
            detail=f"{label} names the program that wrote the file.",
        )
    suggests, name = match
    what = "the AI image generator" if suggests == "ai" else "the image editor"
    return Finding(kind=kind, key=key, value=_short(text), suggests=suggests, detail=f"{label} names {what} {name}.")


def _source_type(*, value: str) -> tuple[str, str]:
    """Map an IPTC digital source type URL (or bare code) to (suggests, code)."""
    code = value.strip().rstrip("/").rsplit("/", 1)[-1]
    return _SOURCE_TYPES.get(code, "neutral"), code


def _inflate(*, blob: bytes, limit: int) -> bytes:
    # Bounded inflate: a zlib bomb yields at most `limit` bytes.
    return zlib.decompressobj().decompress(blob, limit)


# --- container walking -----------------------------------------------------------------


def _split_container(*, data: bytes, mime: str) -> _Metadata:
    meta = _Metadata()
    walk = {"image/jpeg": _walk_jpeg, "image/png": _walk_png, "image/webp": _walk_webp}[mime]
    try:
        walk(data=data, meta=meta)
    except Exception as exc:  # keep whatever was collected before the damage
        _keep(
            bucket=meta.errors,
            item=_error(
                key="container",
                value=_short(str(exc)),
                detail=f"The {mime} file is damaged; later metadata was not read: {_short(str(exc), limit=200)}",
            ),
        )
    return meta


def _walk_jpeg(*, data: bytes, meta: _Metadata) -> None:
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
        if marker == 0xE1 and payload.startswith(_JPEG_EXIF_PREFIX):
            _keep(bucket=meta.exif, item=payload)
        elif marker == 0xE1 and payload.startswith(_JPEG_XMP_PREFIX):
            _keep(bucket=meta.xmp, item=payload[len(_JPEG_XMP_PREFIX) :])


def _walk_png(*, data: bytes, meta: _Metadata) -> None:
    # Walk every chunk (text may follow IDAT) without verifying CRCs or touching IDAT.
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"PNG chunk {ctype!r} is truncated")
        pos += 12 + length
        if ctype == b"IEND":
            return
        if ctype == b"eXIf":
            _keep(bucket=meta.exif, item=b"Exif\x00\x00" + body)
        elif ctype in (b"tEXt", b"zTXt", b"iTXt") and len(meta.png_text) < MAX_BLOBS_PER_KIND:
            try:
                key, text = _png_text_chunk(ctype=ctype, body=body)
            except (ValueError, zlib.error) as exc:
                _keep(
                    bucket=meta.errors,
                    item=_error(
                        key="png_text",
                        value=_short(f"{ctype.decode('latin-1')}: {exc}"),
                        detail=f"A PNG {ctype.decode('latin-1')} chunk is malformed and was skipped.",
                    ),
                )
                continue
            if key == "XML:com.adobe.xmp":
                _keep(bucket=meta.xmp, item=text.encode("utf-8"))
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
        return key, _inflate(blob=rest[1:], limit=limit).decode("latin-1")
    if len(rest) < 2:
        raise ValueError("iTXt chunk too short")
    compressed = rest[0] == 1
    _language, sep1, rest = rest[2:].partition(b"\x00")
    _translated, sep2, text = rest.partition(b"\x00")
    if not (sep1 and sep2):
        raise ValueError("iTXt chunk is missing its language fields")
    raw = _inflate(blob=text, limit=limit) if compressed else text[:limit]
    return key, raw.decode("utf-8", errors="replace")


def _walk_webp(*, data: bytes, meta: _Metadata) -> None:
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
            _keep(bucket=meta.exif, item=body if body.startswith(_JPEG_EXIF_PREFIX) else b"Exif\x00\x00" + body)
        elif fourcc == b"XMP ":
            _keep(bucket=meta.xmp, item=body)


# --- C2PA ------------------------------------------------------------------------------


def _c2pa_findings(*, data: bytes, mime: str) -> list[Finding]:
    with c2pa.Context.from_dict(_C2PA_SETTINGS) as context:
        try:
            reader = c2pa.Reader.try_create(mime, io.BytesIO(data), None, context)
        except c2pa.C2paError as exc:
            # Fetching is disabled, so a manifest that lives at a URL surfaces as an error.
            if not str(exc).startswith("Remote:"):
                raise
            return [_remote_manifest_finding(message=str(exc))]
        if reader is None:
            return []
        with reader:
            store = json.loads(reader.json())
    return _c2pa_store_findings(store=store)


def _remote_manifest_finding(*, message: str) -> Finding:
    return Finding(
        kind="c2pa",
        key="c2pa.remote_manifest",
        value=_short(message.rsplit(" ", 1)[-1]),  # the message ends with the URL
        suggests="neutral",
        detail="The file points to a remote C2PA manifest; remote manifests are never fetched or checked.",
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _c2pa_store_findings(*, store: dict[str, Any]) -> list[Finding]:
    manifests = store.get("manifests") if isinstance(store.get("manifests"), dict) else {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(manifests.get(active_label), dict) else {}
    codes = [str(status.get("code")) for status in _dicts(store.get("validation_status"))]
    state = str(store.get("validation_state") or ("Invalid" if set(codes) - {_UNTRUSTED} else "Valid"))
    signer = _c2pa_signer(manifest=active)
    if state == "Trusted":
        verdict = "the signature is valid and the signer is on the trust list"
    elif state == "Valid":
        verdict = (
            "the signature is intact but the signing certificate is not on a trust list, so the signer is unverified"
        )
    else:
        verdict = (
            f"the manifest FAILED validation ({', '.join(codes) or 'no codes'}): file or manifest altered or forged"
        )

    findings = [
        Finding(
            kind="c2pa",
            key="c2pa.signature",
            value=_short(f"{state}: {', '.join(codes)}" if codes else state),
            suggests="neutral",
            detail=f"C2PA manifest signed by {signer}; {verdict}.",
        )
    ]
    generator = _c2pa_generator(manifest=active)
    if generator:
        findings.append(
            _software_finding(kind="c2pa", key="c2pa.claim_generator", text=generator, label="The C2PA claim generator")
        )
    # Ingredient manifests matter: an AI image later edited in Photoshop carries
    # the generator's declaration only in the ingredient's manifest.
    scopes = [("c2pa.actions", active)] + [
        ("c2pa.ingredient.actions", manifest)
        for label, manifest in manifests.items()
        if label != active_label and isinstance(manifest, dict)
    ]
    for key_prefix, manifest in scopes:
        for action in _c2pa_actions(manifest=manifest):
            findings.append(
                _c2pa_action_finding(
                    action=action,
                    key=f"{key_prefix}.digitalSourceType",
                    signer=signer,
                    verdict=verdict,
                    invalid=state == "Invalid",
                )
            )
    return findings


def _c2pa_signer(*, manifest: dict[str, Any]) -> str:
    info = manifest.get("signature_info") if isinstance(manifest.get("signature_info"), dict) else {}
    name, issuer = str(info.get("common_name") or ""), str(info.get("issuer") or "")
    if name and issuer and issuer != name:
        return _short(f"{name} ({issuer})", limit=200)
    return _short(name or issuer or "an unnamed signer", limit=200)


def _c2pa_generator(*, manifest: dict[str, Any]) -> str:
    infos = _dicts(manifest.get("claim_generator_info"))
    if infos:
        return " ".join(str(infos[0].get(part)) for part in ("name", "version") if infos[0].get(part))
    return str(manifest.get("claim_generator") or "")


def _c2pa_actions(*, manifest: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Actions carrying a digitalSourceType, from c2pa.actions (v1) and c2pa.actions.v2."""
    for assertion in _dicts(manifest.get("assertions")):
        data = assertion.get("data")
        if not str(assertion.get("label", "")).startswith("c2pa.actions") or not isinstance(data, dict):
            continue
        for action in _dicts(data.get("actions")):
            parameters = action.get("parameters") if isinstance(action.get("parameters"), dict) else {}
            # v1 writers sometimes put the source type inside "parameters".
            if action.get("digitalSourceType") or parameters.get("digitalSourceType"):
                yield action


def _c2pa_action_finding(*, action: dict[str, Any], key: str, signer: str, verdict: str, invalid: bool) -> Finding:
    parameters = action.get("parameters") if isinstance(action.get("parameters"), dict) else {}
    value = str(action.get("digitalSourceType") or parameters.get("digitalSourceType"))
    suggests, code = _source_type(value=value)
    if invalid and suggests == "camera":
        suggests = "neutral"  # a broken signature cannot vouch for a capture
    agent = action.get("softwareAgent")
    agent_name = str(agent.get("name", "")) if isinstance(agent, dict) else str(agent or "")
    via = f" via {_short(agent_name, limit=100)}" if agent_name else ""
    action_name = _short(str(action.get("action")), limit=60)
    scope = "An ingredient's C2PA manifest" if ".ingredient." in key else "C2PA manifest"
    return Finding(
        kind="c2pa",
        key=key,
        value=_short(value),
        suggests=suggests,
        detail=f"{scope} signed by {signer} declares {code} (action {action_name}{via}); {verdict}.",
    )


# --- XMP -------------------------------------------------------------------------------


def _xmp_findings(*, packet: bytes) -> list[Finding]:
    if len(packet) > MAX_XMP_BYTES:
        raise ValueError(f"XMP packet larger than {MAX_XMP_BYTES} bytes")
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise ValueError("XMP packet declares a DTD")  # XMP never does; refuse entity tricks
    root = ElementTree.fromstring(packet.strip(b"\x00 \t\r\n"))
    findings: list[Finding] = []
    for element in root.iter():
        for name, value in _xmp_properties(element=element):
            if name == f"{_NS_IPTC_EXT}DigitalSourceType":
                findings.append(_xmp_source_type_finding(value=value))
            elif name == f"{_NS_XMP}CreatorTool":
                findings.append(
                    _software_finding(kind="xmp", key="xmp:CreatorTool", text=value, label="XMP CreatorTool")
                )
    return findings


def _xmp_properties(*, element: ElementTree.Element) -> Iterable[tuple[str, str]]:
    """Yield (qualified name, value) for attribute-form and element-form properties."""
    yield from element.attrib.items()
    value = element.get(f"{_NS_RDF}resource") or (element.text or "")
    if value.strip():
        yield element.tag, value.strip()


def _xmp_source_type_finding(*, value: str) -> Finding:
    suggests, code = _source_type(value=value)
    if suggests == "ai":
        detail = f"XMP declares the IPTC digital source type {code}: a generative or algorithmic process made it."
    elif suggests == "camera":
        detail = f"XMP declares the IPTC digital source type {code} (a camera capture), but {_FORGEABLE}."
    else:
        detail = f"XMP declares the IPTC digital source type {code}."
    return Finding(
        kind="xmp", key="Iptc4xmpExt:DigitalSourceType", value=_short(value), suggests=suggests, detail=detail
    )


# --- EXIF ------------------------------------------------------------------------------


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


def _exif_findings(*, blob: bytes) -> list[Finding]:
    exif = Image.Exif()
    exif.load(blob)
    findings: list[Finding] = []

    software = _exif_text(exif.get(_EXIF_SOFTWARE, ""))
    if software:
        findings.append(_software_finding(kind="exif", key="Software", text=software, label="EXIF Software"))

    for tag, key in ((_EXIF_MAKE, "Make"), (_EXIF_MODEL, "Model")):
        value = _exif_text(exif.get(tag, ""))
        if value:
            findings.append(
                Finding(
                    kind="exif",
                    key=key,
                    value=_short(value),
                    suggests="camera",
                    detail=f"EXIF {key} names a camera ({_short(value, limit=80)}), but {_FORGEABLE}.",
                )
            )

    free_text = [
        ("ImageDescription", _exif_text(exif.get(_EXIF_DESCRIPTION, ""))),
        ("Artist", _exif_text(exif.get(_EXIF_ARTIST, ""))),
        ("UserComment", _user_comment(raw=exif.get_ifd(_EXIF_IFD).get(_EXIF_USER_COMMENT, b""), endian=exif.endian)),
    ]
    for key, text in free_text:
        reason = _generator_text_reason(text=text)
        if reason:
            findings.append(
                Finding(kind="exif", key=key, value=_short(text), suggests="ai", detail=f"EXIF {key} {reason}.")
            )
    return findings


def _generator_text_reason(*, text: str) -> str | None:
    if _SD_PARAMETERS.search(text):
        return "holds Stable Diffusion generation parameters (steps, sampler)"
    match = _classify_name(text=text)
    if match and match[0] == "ai":
        return f"names the AI image generator {match[1]}"
    return None


# --- PNG text --------------------------------------------------------------------------


def _png_text_findings(*, chunks: Sequence[tuple[str, str]]) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[str] = set()
    for key, text in chunks:
        if key in seen:  # one finding per key is enough; repeats are noise or padding
            continue
        if key in _GENERATOR_PNG_KEYS and text.strip():
            seen.add(key)
            findings.append(
                Finding(
                    kind="png_text",
                    key=key,
                    value=_short(text),
                    suggests="ai",
                    detail=f"PNG text chunk '{key}' holds {_GENERATOR_PNG_KEYS[key]}, written by image generators.",
                )
            )
        elif key == "Software":
            seen.add(key)
            findings.append(_software_finding(kind="png_text", key=key, text=text, label="PNG Software"))
        elif key in _FREE_TEXT_PNG_KEYS and (reason := _generator_text_reason(text=text)):
            seen.add(key)
            findings.append(
                Finding(
                    kind="png_text",
                    key=key,
                    value=_short(text),
                    suggests="ai",
                    detail=f"PNG text chunk '{key}' {reason}.",
                )
            )
    return findings
