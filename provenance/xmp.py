"""XMP packets: CreatorTool and the IPTC digital source type."""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree import ElementTree

from provenance.findings import FORGEABLE, Finding, shorten
from provenance.metadata import MAX_XMP_BYTES
from provenance.names import software_finding, source_type

_NS_IPTC_EXT = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"


_NS_XMP = "{http://ns.adobe.com/xap/1.0/}"


_NS_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def xmp_findings(*, packet: bytes) -> list[Finding]:
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
                    software_finding(kind="xmp", key="xmp:CreatorTool", text=value, label="XMP CreatorTool")
                )
    return findings


def _xmp_properties(*, element: ElementTree.Element) -> Iterable[tuple[str, str]]:
    """Yield (qualified name, value) for attribute-form and element-form properties."""
    yield from element.attrib.items()
    value = element.get(f"{_NS_RDF}resource") or (element.text or "")
    if value.strip():
        yield element.tag, value.strip()


def _xmp_source_type_finding(*, value: str) -> Finding:
    suggests, code = source_type(value=value)
    if suggests == "ai":
        detail = f"XMP declares the IPTC digital source type {code}: a generative or algorithmic process made it."
    elif suggests == "camera":
        detail = f"XMP declares the IPTC digital source type {code} (a camera capture), but {FORGEABLE}."
    else:
        detail = f"XMP declares the IPTC digital source type {code}."
    return Finding(
        kind="xmp", key="Iptc4xmpExt:DigitalSourceType", value=shorten(value), suggests=suggests, detail=detail
    )
