from PIL import ExifTags

from detection.models import Evidence
from moderation.models import State
from tests.provenance_files import (
    c2pa_signed_jpeg,
    exif_app1,
    jpeg_with_segments,
    png_text,
    png_with_chunks,
)

APP1 = 0xE1


def test_metadata_that_declares_generative_ai_flags_the_upload_whatever_the_score(
    contributor, submission_make, force_verdict
):
    force_verdict("real")
    data = png_with_chunks(chunks=[png_text(key="parameters", text="a castle, Steps: 20, Sampler: Euler a")])
    submission = submission_make(contributor=contributor, data=data)
    assert submission.state == State.FLAGGED
    assert submission.verdict == "ai"
    assert submission.detections.get().verdict == "real"  # the detector's own verdict is kept
    assert submission.evidence.filter(kind="png_text", suggests=Evidence.Suggests.AI).exists()
    assert "Metadata declares generative AI" in submission.audit_events.get(action="analysed").reason


def test_a_c2pa_manifest_declaring_trained_algorithmic_media_flags_the_upload(
    contributor, submission_make, force_verdict
):
    force_verdict("real")
    submission = submission_make(contributor=contributor, data=c2pa_signed_jpeg())
    assert submission.state == State.FLAGGED
    assert submission.evidence.filter(kind="c2pa", suggests=Evidence.Suggests.AI).exists()


def camera_jpeg() -> bytes:
    tags = {ExifTags.Base.Make: "Canon", ExifTags.Base.Model: "EOS R5"}
    return jpeg_with_segments(segments=[(APP1, exif_app1(tags=tags))])


def test_camera_exif_is_recorded_but_never_clears_an_image_the_detector_flags(
    contributor, submission_make, force_verdict
):
    force_verdict("ai")
    submission = submission_make(contributor=contributor, data=camera_jpeg())
    assert submission.state == State.FLAGGED
    assert set(submission.evidence.values_list("key", "suggests")) >= {("Make", "camera"), ("Model", "camera")}


def test_corrupt_metadata_is_recorded_as_unreadable_and_analysis_goes_on(contributor, submission_make, force_verdict):
    force_verdict("real")
    data = jpeg_with_segments(segments=[(APP1, b"Exif\x00\x00" + b"\xff\x00garbage" * 20)])
    submission = submission_make(contributor=contributor, data=data)
    assert submission.state == State.CLEARED
    assert submission.evidence.filter(suggests=Evidence.Suggests.UNREADABLE).exists()


def test_evidence_is_read_once_when_analysis_runs_again(contributor, submission_make, force_verdict):
    from detection.services import evidence_record

    force_verdict("ai")
    submission = submission_make(contributor=contributor, data=camera_jpeg())
    before = submission.evidence.count()
    evidence_record(submission=submission)
    assert submission.evidence.count() == before > 0
