"""Provenance evidence extraction: every file is built here, in memory."""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

import pytest

from provenance import MAX_VALUE_CHARS, Finding, declares_ai, provenance_extract
from tests.provenance_files import (
    C2PA_SIGNER_NAME,
    DIGITAL_CAPTURE,
    EXIF_DESCRIPTION,
    EXIF_MAKE,
    EXIF_MODEL,
    EXIF_SOFTWARE,
    EXIF_USER_COMMENT,
    TRAINED_ALGORITHMIC_MEDIA,
    c2pa_signed_jpeg,
    exif_app1,
    jpeg_with_segments,
    plain_jpeg,
    plain_png,
    plain_webp,
    png_chunk,
    png_itxt,
    png_text,
    png_with_chunks,
    webp_with_metadata,
    xmp_app1,
    xmp_packet,
)

APP1 = 0xE1


def _only(findings: list[Finding], *, kind: str, key: str) -> Finding:
    matching = [finding for finding in findings if finding.kind == kind and finding.key == key]
    assert len(matching) == 1, findings
    return matching[0]


def _assert_harmless(findings: list[Finding]) -> None:
    assert all(finding.kind == "error" and finding.suggests == "unreadable" for finding in findings), findings


def test_png_with_stable_diffusion_webui_parameters_chunk_is_ai() -> None:
    parameters = "a lighthouse at dawn\nSteps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 1234, Model: sdxl"
    findings = provenance_extract(data=png_with_chunks(chunks=[png_text(key="parameters", text=parameters)]))

    finding = _only(findings, kind="png_text", key="parameters")
    assert finding.suggests == "ai"
    assert finding.value == parameters
    assert declares_ai(findings=findings) is finding


def test_png_with_comfyui_prompt_and_workflow_chunks_is_ai() -> None:
    prompt = '{"3": {"class_type": "KSampler", "inputs": {"seed": 42}}}'
    workflow = '{"nodes": [{"type": "CheckpointLoaderSimple"}]}'
    png = png_with_chunks(chunks=[png_text(key="prompt", text=prompt), png_itxt(key="workflow", text=workflow)])

    findings = provenance_extract(data=png)

    assert _only(findings, kind="png_text", key="prompt").suggests == "ai"
    assert _only(findings, kind="png_text", key="workflow").suggests == "ai"
    assert "ComfyUI" in _only(findings, kind="png_text", key="workflow").detail


def test_generator_text_after_idat_is_still_read() -> None:
    png = png_with_chunks(chunks=[], at_end=png_text(key="parameters", text="cat") + png_chunk(ctype=b"IEND", body=b""))

    assert _only(provenance_extract(data=png), kind="png_text", key="parameters").suggests == "ai"


def test_huge_generator_text_chunk_is_truncated_in_the_finding() -> None:
    workflow = '{"nodes": [' + ",".join(['{"type": "KSampler"}'] * 200_000) + "]}"
    png = png_with_chunks(chunks=[png_itxt(key="workflow", text=workflow, compressed=True)])

    finding = _only(provenance_extract(data=png), kind="png_text", key="workflow")

    assert finding.suggests == "ai"
    assert len(finding.value) <= MAX_VALUE_CHARS


@pytest.mark.parametrize("element_form", [False, True], ids=["attribute-form", "element-form"])
def test_jpeg_xmp_declaring_trained_algorithmic_media_is_ai(element_form: bool) -> None:
    packet = xmp_packet(digital_source_type=TRAINED_ALGORITHMIC_MEDIA, element_form=element_form)
    findings = provenance_extract(data=jpeg_with_segments(segments=[(APP1, xmp_app1(packet=packet))]))

    finding = _only(findings, kind="xmp", key="Iptc4xmpExt:DigitalSourceType")
    assert finding.suggests == "ai"
    assert finding.value == TRAINED_ALGORITHMIC_MEDIA


def test_jpeg_xmp_declaring_digital_capture_is_camera_but_flagged_as_forgeable() -> None:
    packet = xmp_packet(digital_source_type=DIGITAL_CAPTURE)
    findings = provenance_extract(data=jpeg_with_segments(segments=[(APP1, xmp_app1(packet=packet))]))

    finding = _only(findings, kind="xmp", key="Iptc4xmpExt:DigitalSourceType")
    assert finding.suggests == "camera"
    assert "trivially edited" in finding.detail
    assert declares_ai(findings=findings) is None  # camera metadata never clears an image


def test_xmp_in_png_itxt_and_in_webp_is_read() -> None:
    packet = xmp_packet(digital_source_type=TRAINED_ALGORITHMIC_MEDIA)
    png = png_with_chunks(chunks=[png_itxt(key="XML:com.adobe.xmp", text=packet.decode(), compressed=True)])
    webp = webp_with_metadata(xmp=packet)

    for data in (png, webp):
        assert _only(provenance_extract(data=data), kind="xmp", key="Iptc4xmpExt:DigitalSourceType").suggests == "ai"


def test_exif_software_adobe_firefly_is_ai_in_jpeg_and_webp() -> None:
    exif = exif_app1(tags={EXIF_SOFTWARE: "Adobe Firefly"})

    for data in (jpeg_with_segments(segments=[(APP1, exif)]), webp_with_metadata(exif=exif)):
        finding = _only(provenance_extract(data=data), kind="exif", key="Software")
        assert finding.suggests == "ai"
        assert "Adobe Firefly" in finding.detail


def test_exif_make_and_model_are_camera_evidence_only() -> None:
    exif = exif_app1(tags={EXIF_MAKE: "Canon", EXIF_MODEL: "EOS R5"})
    findings = provenance_extract(data=jpeg_with_segments(segments=[(APP1, exif)]))

    assert _only(findings, kind="exif", key="Make").value == "Canon"
    assert _only(findings, kind="exif", key="Model").value == "EOS R5"
    assert {finding.suggests for finding in findings} == {"camera"}
    assert declares_ai(findings=findings) is None  # camera metadata never clears an image


def test_exif_software_photoshop_is_edited() -> None:
    exif = exif_app1(tags={EXIF_SOFTWARE: "Adobe Photoshop 25.0 (Windows)"})
    findings = provenance_extract(data=jpeg_with_segments(segments=[(APP1, exif)]))

    assert _only(findings, kind="exif", key="Software").suggests == "edited"
    assert declares_ai(findings=findings) is None


def test_exif_user_comment_with_webui_parameters_is_ai() -> None:
    comment = "portrait of a sailor, Steps: 25, Sampler: Euler a, CFG scale: 6"
    exif = exif_app1(tags={}, exif_ifd={EXIF_USER_COMMENT: b"UNICODE\x00" + comment.encode("utf-16-be")})
    findings = provenance_extract(data=jpeg_with_segments(segments=[(APP1, exif)]))

    finding = _only(findings, kind="exif", key="UserComment")
    assert finding.suggests == "ai"
    assert finding.value == comment


def test_photo_caption_that_merely_mentions_fireflies_is_not_ai() -> None:
    exif = exif_app1(tags={EXIF_DESCRIPTION: "Fireflies over a meadow, imagen de la noche, flux of light"})

    assert provenance_extract(data=jpeg_with_segments(segments=[(APP1, exif)])) == []


def test_c2pa_signed_jpeg_declaring_trained_algorithmic_media_is_ai_and_names_the_signer() -> None:
    findings = provenance_extract(data=c2pa_signed_jpeg(digital_source_type=TRAINED_ALGORITHMIC_MEDIA))

    action = _only(findings, kind="c2pa", key="c2pa.actions.digitalSourceType")
    assert action.suggests == "ai"
    assert action.value == TRAINED_ALGORITHMIC_MEDIA
    assert C2PA_SIGNER_NAME in action.detail
    assert "c2pa.created" in action.detail
    # The test CA is on no trust list, and the finding must say so.
    signature = _only(findings, kind="c2pa", key="c2pa.signature")
    assert signature.value == "Valid: signingCredential.untrusted"
    assert "not on a trust list" in action.detail
    assert _only(findings, kind="c2pa", key="c2pa.claim_generator").value == "Provenance Test Suite 1.0"
    assert declares_ai(findings=findings).suggests == "ai"


def test_c2pa_manifest_of_a_file_altered_after_signing_is_reported_as_failed() -> None:
    signed = c2pa_signed_jpeg()
    # Flip a byte in the entropy-coded image data near the end, well past the manifest.
    position = len(signed) - 100
    tampered = signed[:position] + bytes([signed[position] ^ 0xFF]) + signed[position + 1 :]

    findings = provenance_extract(data=tampered)

    signature = _only(findings, kind="c2pa", key="c2pa.signature")
    assert signature.value.startswith("Invalid:")
    assert "assertion.dataHash.mismatch" in signature.value
    assert "FAILED validation" in _only(findings, kind="c2pa", key="c2pa.actions.digitalSourceType").detail


def test_remote_c2pa_manifest_is_reported_but_never_fetched() -> None:
    # Port 9 (discard) on loopback: a fetch attempt would fail loudly instead of hanging.
    findings = provenance_extract(data=c2pa_signed_jpeg(remote_url="http://127.0.0.1:9/manifest.c2pa"))

    finding = _only(findings, kind="c2pa", key="c2pa.remote_manifest")
    assert finding.value == "http://127.0.0.1:9/manifest.c2pa"
    assert finding.suggests == "neutral"


@pytest.mark.parametrize("build", [plain_jpeg, plain_png, plain_webp], ids=["jpeg", "png", "webp"])
def test_stripped_files_have_no_findings(build: Callable[[], bytes]) -> None:
    data = build()

    assert provenance_extract(data=data) == []


def _jpeg_with_garbage_exif() -> bytes:
    return jpeg_with_segments(segments=[(APP1, b"Exif\x00\x00" + random.Random(1).randbytes(300))])


def _png_with_truncated_itxt() -> bytes:
    return png_with_chunks(chunks=[], at_end=png_itxt(key="Comment", text="made with Midjourney")[:-9])


def _png_with_garbled_itxt() -> bytes:
    # Flags say "compressed" but the payload is not zlib; a second chunk has no keyword terminator.
    return png_with_chunks(
        chunks=[
            png_chunk(ctype=b"iTXt", body=b"Comment\x00\x01\x00\x00\x00not zlib at all"),
            png_chunk(ctype=b"iTXt", body=b"x" * 100),
        ]
    )


def _png_with_zlib_bomb_text() -> bytes:
    bomb = zlib.compress(b"\x00" * 20_000_000, 9)
    return png_with_chunks(chunks=[png_chunk(ctype=b"zTXt", body=b"Comment\x00\x00" + bomb)])


def _xmp_with_entity_expansion() -> bytes:
    packet = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><x>&a;&a;&a;</x>'
    return jpeg_with_segments(segments=[(APP1, xmp_app1(packet=packet))])


def _jpeg_segment_running_past_end() -> bytes:
    return plain_jpeg()[:2] + b"\xff\xe1\xff\xf0Exif\x00\x00II*\x00"


@pytest.mark.parametrize(
    ("data", "reports_unreadable"),
    [
        pytest.param(_jpeg_with_garbage_exif(), True, id="jpeg-garbage-exif"),
        pytest.param(_png_with_truncated_itxt(), True, id="png-truncated-itxt"),
        pytest.param(_png_with_garbled_itxt(), True, id="png-garbled-itxt"),
        # Bounded inflate: the bomb is read as a harmless 64 KiB prefix, not an error.
        pytest.param(_png_with_zlib_bomb_text(), False, id="png-ztxt-bomb"),
        pytest.param(_xmp_with_entity_expansion(), True, id="xmp-doctype"),
        pytest.param(_jpeg_segment_running_past_end(), True, id="jpeg-segment-past-end"),
        pytest.param(b"RIFF\xff\xff\xff\xffWEBPVP8X\xff\xff", True, id="webp-truncated"),
        pytest.param(random.Random(2).randbytes(4096), True, id="random-bytes"),
        pytest.param(b"", True, id="empty"),
    ],
)
def test_corrupt_metadata_never_raises_and_only_reports_unreadable(data: bytes, reports_unreadable: bool) -> None:
    findings = provenance_extract(data=data)

    _assert_harmless(findings)
    assert bool(findings) is reports_unreadable


def test_corrupt_source_does_not_hide_the_others() -> None:
    exif = exif_app1(tags={EXIF_SOFTWARE: "Midjourney"})
    garbage = b"Exif\x00\x00" + b"\x00" * 64
    data = jpeg_with_segments(segments=[(APP1, garbage), (APP1, exif)])

    findings = provenance_extract(data=data)

    assert _only(findings, kind="error", key="exif").suggests == "unreadable"
    assert _only(findings, kind="exif", key="Software").suggests == "ai"


def test_any_ai_finding_declares_ai_and_camera_metadata_never_outweighs_it() -> None:
    def finding(suggests: str) -> Finding:
        return Finding(kind="exif", key=suggests, value="v", suggests=suggests, detail="d")

    assert declares_ai(findings=[finding("camera"), finding("ai")]).key == "ai"
    assert (
        declares_ai(findings=[finding("camera"), finding("edited"), finding("neutral"), finding("unreadable")]) is None
    )
