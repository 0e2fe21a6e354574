"""Recalibration on moderators' decisions: the proposal, its refusal with too few decisions, applying only the
confirmed proposal, the audit trail and reverting; from the command and from the model settings page."""

import io
import shutil

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import AuditEvent
from detection import services_settings
from detection.core.metrics import false_flags_allowed
from detection.models import ModelSetting, ThresholdChange
from detection.selectors import model_card_get
from moderation import recalibration
from moderation.models import Scenery, State
from tests.conftest import login
from tests.decided import uploads_analysed

BAND_NOW = {"low": 0.2, "high": 0.5}


def _spread(n: int, low: float, high: float) -> list[float]:
    return [low + (high - low) * (i + 0.5) / n for i in range(n)]


@pytest.fixture
def band_now(db, tiny_detector, platform_admin):
    """The tiny model with one band in force for every scenery, set by an admin."""
    services_settings.model_thresholds_update(
        model_name=tiny_detector, thresholds=dict.fromkeys(Scenery.values, BAND_NOW), actor=platform_admin
    )
    return BAND_NOW


@pytest.fixture
def many_false_flags(band_now, tiny_detector, contributor):
    """Every upload decided: 40 of 300 genuine photos scored above the band in force, and 50 AI images."""
    version = model_card_get(name=tiny_detector).version
    rows = [(score, "ai", State.APPROVED, False) for score in _spread(40, band_now["high"], 0.9)]
    rows += [(score, "real", State.APPROVED, True) for score in _spread(260, 0.0, band_now["low"])]
    rows += [(score, "ai", State.REJECTED, False) for score in _spread(50, 0.6, 1.0)]
    return uploads_analysed(contributor=contributor, model_name=tiny_detector, version=version, rows=rows)


def test_recalibration_raises_the_threshold_when_genuine_photos_score_above_it(tiny_detector, many_false_flags):
    proposal = recalibration.recalibration_propose(model_name=tiny_detector)
    assert proposal.proposed["high"] > BAND_NOW["high"]
    assert recalibration.PLATFORM_SOURCE in proposal.proposed["false_flag_populations"]
    decided = next(row for row in proposal.rates if row["population"] == "decided uploads")
    assert decided["before"]["false_flags"] == 40 and decided["before"]["reals"] == 300
    # After: no more flags than the bound allows on 300 genuine photos, paid for with some recall.
    target = proposal.proposed["false_flag_target"]
    allowed = false_flags_allowed(300, rate=target, confidence=proposal.proposed["false_flag_confidence"])
    assert decided["after"]["false_flags"] <= allowed < decided["before"]["false_flags"]
    assert decided["after"]["recall"] <= decided["before"]["recall"]
    assert proposal.note == "" and proposal.heldout
    # A preview changes nothing.
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds["forest"] == BAND_NOW


def test_recalibration_refuses_with_too_few_decided_genuine_photos(tiny_detector, band_now, contributor):
    version = model_card_get(name=tiny_detector).version
    rows = [(score, "real", State.APPROVED, True) for score in _spread(30, 0.0, 0.4)]
    uploads_analysed(contributor=contributor, model_name=tiny_detector, version=version, rows=rows)
    with pytest.raises(recalibration.RecalibrationRefused, match="30 decided genuine photos"):
        recalibration.recalibration_propose(model_name=tiny_detector)


def test_flagged_decisions_are_thinned_to_the_spot_checks_chance_of_being_decided(tiny_detector, contributor):
    version = model_card_get(name=tiny_detector).version
    rows = [(0.9, "ai", State.APPROVED, False)] * 200  # every flagged upload decided
    rows += [(0.1, "real", State.APPROVED, True)] * 50 + [(0.1, "real", None, False)] * 450  # 1 in 10 cleared
    uploads_analysed(contributor=contributor, model_name=tiny_detector, version=version, rows=rows)
    sample = recalibration.decided_sample(model_name=tiny_detector, version=version)
    flagged_kept = sum(s.score == 0.9 for s in sample)
    assert sum(s.score == 0.1 for s in sample) == 50
    assert 200 * 0.1 / 2 < flagged_kept < 200 * 0.1 * 2  # about one in ten, as the cleared ones


def test_only_the_confirmed_proposal_is_applied_audited_and_revertible(tiny_detector, many_false_flags, platform_admin):
    proposal = recalibration.recalibration_propose(model_name=tiny_detector)
    with pytest.raises(recalibration.RecalibrationStale):
        recalibration.recalibration_apply(
            model_name=tiny_detector, confirmed_low=0.1, confirmed_high=0.99, actor=platform_admin
        )
    change = recalibration.recalibration_apply(
        model_name=tiny_detector,
        confirmed_low=proposal.proposed["low"],
        confirmed_high=proposal.proposed["high"],
        actor=platform_admin,
    )
    bands = ModelSetting.objects.get(model_name=tiny_detector).thresholds
    assert set(bands) == set(Scenery.values)
    assert bands["forest"] == {"low": proposal.proposed["low"], "high": proposal.proposed["high"]}
    assert change.kind == ThresholdChange.Kind.RECALIBRATION and change.thresholds_before["forest"] == BAND_NOW
    assert change.summary["rates"] == proposal.rates
    assert AuditEvent.objects.filter(action="thresholds recalibrated", actor=platform_admin).exists()

    reverted = services_settings.model_thresholds_revert(change_id=change.pk, actor=platform_admin)
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds["forest"] == BAND_NOW
    assert reverted.reverts == change
    assert AuditEvent.objects.filter(action="thresholds reverted", actor=platform_admin).exists()
    # The recalibration is no longer what is in force: reverting it again would undo the revert unseen.
    with pytest.raises(services_settings.SettingRefused):
        services_settings.model_thresholds_revert(change_id=change.pk, actor=platform_admin)


def test_the_command_previews_and_applies_only_with_apply(tiny_detector, many_false_flags):
    out = io.StringIO()
    call_command("recalibrate_detector", model=tiny_detector, stdout=out)
    assert "decided uploads: false flags" in out.getvalue() and "Nothing changed" in out.getvalue()
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds["forest"] == BAND_NOW
    call_command("recalibrate_detector", model=tiny_detector, apply=True, stdout=io.StringIO())
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds["forest"]["high"] > BAND_NOW["high"]
    assert ThresholdChange.objects.filter(kind=ThresholdChange.Kind.RECALIBRATION, actor=None).exists()


def test_the_command_says_so_when_the_bundle_has_no_heldout_scores_and_refuses_too_few(
    tiny_detector, many_false_flags, settings, tmp_path
):
    shutil.copytree(settings.DETECTOR_WEIGHTS_DIR / tiny_detector, tmp_path / tiny_detector)
    (tmp_path / tiny_detector / "heldout_scores.json").unlink()
    settings.DETECTOR_WEIGHTS_DIR = tmp_path
    out = io.StringIO()
    call_command("recalibrate_detector", model=tiny_detector, stdout=out)
    assert "from decisions alone" in out.getvalue()
    with pytest.raises(CommandError, match="no trained weights"):
        call_command("recalibrate_detector", model="ghost", stdout=io.StringIO())


def test_an_admin_previews_confirms_and_reverts_on_the_model_settings_page(
    client, platform_admin, tiny_detector, many_false_flags
):
    login(client, platform_admin)
    page = client.get(reverse("model_settings"), {"model": tiny_detector}).content.decode()
    assert reverse("recalibration_preview", args=[tiny_detector]) in page
    preview = client.post(reverse("recalibration_preview", args=[tiny_detector]))
    proposal = preview.context["proposal"]
    assert 'id="recalibration-rates"' in preview.content.decode()
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds["forest"] == BAND_NOW

    form = preview.context["form"]
    applied = client.post(
        reverse("recalibration_apply", args=[tiny_detector]),
        {"low": form.initial["low"], "high": form.initial["high"]},
        follow=True,
    )
    assert "recalibrated" in applied.content.decode()
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds["forest"]["high"] == proposal.proposed["high"]

    change = ThresholdChange.objects.filter(model_name=tiny_detector).first()
    client.post(reverse("model_thresholds_revert", args=[change.pk]))
    assert ModelSetting.objects.get(model_name=tiny_detector).thresholds["forest"] == BAND_NOW


def test_a_contributor_can_neither_preview_nor_apply(client, contributor, tiny_detector):
    login(client, contributor)
    assert client.post(reverse("recalibration_preview", args=[tiny_detector])).status_code == 403
    assert client.post(reverse("recalibration_apply", args=[tiny_detector]), {"low": 0, "high": 1}).status_code == 403
