"""Builders for small image files carrying provenance metadata, made in memory.

Shared by tests/test_provenance.py and any Django test that needs an upload with
generator metadata, camera EXIF or a real signed C2PA manifest.
"""

from __future__ import annotations

import datetime
import functools
import io
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

IPTC_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_SOURCE_TYPE + "trainedAlgorithmicMedia"
DIGITAL_CAPTURE = IPTC_SOURCE_TYPE + "digitalCapture"

C2PA_SIGNER_NAME = "Provenance Test Generator"
C2PA_SIGNER_ORG = "Provenance Test Signing Org"

EXIF_SOFTWARE, EXIF_MAKE, EXIF_MODEL, EXIF_DESCRIPTION = 0x0131, 0x010F, 0x0110, 0x010E
EXIF_IFD, EXIF_USER_COMMENT = 0x8769, 0x9286


def _pixels() -> Image.Image:
    return Image.new("RGB", (16, 16), (120, 90, 60))


def plain_jpeg() -> bytes:
    out = io.BytesIO()
    _pixels().save(out, "JPEG", quality=80)
    return out.getvalue()


def plain_png() -> bytes:
    out = io.BytesIO()
    _pixels().save(out, "PNG")
    return out.getvalue()


def plain_webp() -> bytes:
    out = io.BytesIO()
    _pixels().save(out, "WEBP", quality=80)
    return out.getvalue()


def jpeg_with_segments(*, segments: Sequence[tuple[int, bytes]]) -> bytes:
    """A JPEG with raw (marker, payload) segments inserted right after SOI."""
    jpeg = plain_jpeg()
    inserted = b"".join(
        bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload for marker, payload in segments
    )
    return jpeg[:2] + inserted + jpeg[2:]


def exif_app1(*, tags: dict[int, Any], exif_ifd: dict[int, Any] | None = None) -> bytes:
    """APP1 payload ("Exif\\0\\0" + TIFF) with IFD0 tags and optional Exif sub-IFD tags."""
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    for tag, value in (exif_ifd or {}).items():
        exif.get_ifd(EXIF_IFD)[tag] = value
    return exif.tobytes()


def xmp_packet(*, digital_source_type: str, element_form: bool = False) -> bytes:
    """An XMP packet; attribute form is what most writers emit, element form what exiftool emits."""
    namespace = 'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    if element_form:
        description = (
            f'<rdf:Description rdf:about="" {namespace}>'
            f"<Iptc4xmpExt:DigitalSourceType>{digital_source_type}</Iptc4xmpExt:DigitalSourceType>"
            "</rdf:Description>"
        )
    else:
        description = (
            f'<rdf:Description rdf:about="" {namespace} Iptc4xmpExt:DigitalSourceType="{digital_source_type}"/>'
        )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{description}</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def xmp_app1(*, packet: bytes) -> bytes:
    return b"http://ns.adobe.com/xap/1.0/\x00" + packet


def png_chunk(*, ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_text(*, key: str, text: str) -> bytes:
    return png_chunk(ctype=b"tEXt", body=key.encode("latin-1") + b"\x00" + text.encode("latin-1"))


def png_itxt(*, key: str, text: str, compressed: bool = False) -> bytes:
    payload = zlib.compress(text.encode()) if compressed else text.encode()
    return png_chunk(ctype=b"iTXt", body=key.encode("latin-1") + bytes([0, int(compressed), 0]) + b"\x00\x00" + payload)


def png_with_chunks(*, chunks: Sequence[bytes], at_end: bytes = b"") -> bytes:
    """A PNG with raw chunks inserted after IHDR; `at_end` replaces everything after IDAT."""
    png = plain_png()
    after_ihdr = 8 + 12 + 13
    body = png[:after_ihdr] + b"".join(chunks) + png[after_ihdr:]
    if not at_end:
        return body
    return body[: body.index(b"IEND") - 4] + at_end


def webp_with_metadata(*, xmp: bytes | None = None, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": 80}
    if xmp is not None:
        options["xmp"] = xmp
    if exif is not None:
        options["exif"] = exif
    _pixels().save(out, "WEBP", **options)
    return out.getvalue()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, C2PA_SIGNER_ORG),
        ]
    )


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


@functools.cache
def c2pa_test_credentials() -> tuple[bytes, bytes]:
    """(signing chain PEM: end-entity then CA, end-entity private key PEM).

    c2pa-rs refuses self-signed signers, so this is a two-level ES256 chain: a CA
    (basicConstraints CA, keyCertSign) and an end-entity cert with the C2PA profile:
    v3, critical keyUsage digitalSignature, EKU emailProtection (no anyExtendedKeyUsage),
    and authority/subject key identifiers.
    """
    now = datetime.datetime.now(datetime.UTC)
    validity = {
        "not_valid_before": now - datetime.timedelta(days=1),
        "not_valid_after": now + datetime.timedelta(days=30),
    }
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder(
            issuer_name=_name("Provenance Test Root CA"), subject_name=_name("Provenance Test Root CA")
        )
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity["not_valid_before"])
        .not_valid_after(validity["not_valid_after"])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer_cert = (
        x509.CertificateBuilder(issuer_name=ca_cert.subject, subject_name=_name(C2PA_SIGNER_NAME))
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity["not_valid_before"])
        .not_valid_after(validity["not_valid_after"])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signer=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = signer_cert.public_bytes(pem) + ca_cert.public_bytes(pem)
    key = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key


def c2pa_signed_jpeg(*, digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA, remote_url: str | None = None) -> bytes:
    """A JPEG signed with c2pa-python, declaring `c2pa.created` with the given source type.

    With `remote_url` the manifest is not embedded; the file only points at that URL.
    """
    chain, key = c2pa_test_credentials()
    manifest = {
        "claim_generator_info": [{"name": "Provenance Test Suite", "version": "1.0"}],
        "title": "generated.jpg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": digital_source_type}]},
            }
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    out = io.BytesIO()
    with signer, c2pa.Builder(manifest) as builder:
        if remote_url is not None:
            builder.set_no_embed()
            builder.set_remote_url(remote_url)
        builder.sign(signer, "image/jpeg", io.BytesIO(plain_jpeg()), out)
    return out.getvalue()
