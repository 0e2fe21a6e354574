"""Decided uploads out as a data folder: the layout and groups.csv the training commands read, a grouped split
that never puts one contributor on both sides, and compare_detectors on that decided set."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from detection.core.data import LABELS, folder_scan, split_make
from moderation import roles, services
from moderation.models import Submission
from tests.factories import UserFactory, image_bytes


@pytest.fixture
def decided_uploads(moderator, submission_make, force_verdict):
    """Three contributors with four decided uploads each (two approved, two rejected), one pending appeal."""
    force_verdict("ai")
    contributors = [UserFactory(username=f"c{i}", role=roles.CONTRIBUTOR) for i in range(3)]
    decided = []
    for i, contributor in enumerate(contributors):
        for j, (outcome, scenery) in enumerate([("approve", "forest"), ("reject", "sea")] * 2):
            submission = submission_make(
                contributor=contributor, data=image_bytes(seed=100 + 10 * i + j), scenery=scenery
            )
            reason = "camera-evidence" if outcome == "approve" else "ai-generated"
            services.submission_decide(
                submission_id=submission.pk, moderator=moderator, outcome=outcome, reason_code=reason
            )
            decided.append(submission)
    pending = submission_make(contributor=contributors[0], data=image_bytes(seed=99))
    services.submission_decide(
        submission_id=pending.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
    )
    services.appeal_create(submission_id=pending.pk, contributor=contributors[0], message="Mine.")
    return decided


def test_the_export_writes_decided_originals_by_label_and_scenery_with_one_group_per_contributor(
    decided_uploads, tmp_path
):
    out = io.StringIO()
    call_command("export_decisions", str(tmp_path / "decided"), since=timezone.now().date().isoformat(), stdout=out)
    samples = folder_scan(folder=tmp_path / "decided")
    assert len(samples) == len(decided_uploads)  # the pending appeal is not final: left out
    by_name = {s.path.name: s for s in samples}
    for submission in decided_uploads:
        submission = Submission.objects.get(pk=submission.pk)
        sample = by_name[f"{submission.pk}.jpg"]
        assert sample.label == (LABELS["real"] if submission.state == "approved" else LABELS["ai_generated"])
        assert sample.path.parent.name == submission.scenery
        assert sample.path.parent.parent.name == ("real" if sample.label == 0 else "ai_generated")
        assert sample.path.read_bytes() == submission.original.read()
    groups = {s.group for s in samples}
    assert len(groups) == 3
    with (tmp_path / "decided" / "groups.csv").open() as handle:
        assert not any("c0" in row["group"] for row in csv.DictReader(handle))  # ids, never usernames
    assert "6 real, 6 ai_generated, 3 contributor groups" in out.getvalue()


def test_a_split_of_the_export_never_puts_one_contributor_on_both_sides(decided_uploads, tmp_path):
    call_command("export_decisions", str(tmp_path / "decided"), since="2000-01-01", stdout=io.StringIO())
    for seed in range(5):
        split = split_make(folders=[tmp_path / "decided"], seed=seed)
        sides = {}
        for name, samples in split["splits"].items():
            for sample in samples:
                sides.setdefault(sample.group, set()).add(name)
        assert all(len(names) == 1 for names in sides.values()), sides
        assert sum(len(samples) for samples in split["splits"].values()) == len(decided_uploads)


def test_identical_bytes_from_two_contributors_are_written_once_in_one_group(
    contributor, other_contributor, moderator, submission_make, force_verdict, tmp_path
):
    force_verdict("ai")
    data = image_bytes(seed=7)
    for uploader in (contributor, other_contributor):
        submission = submission_make(contributor=uploader, data=data)
        services.submission_decide(
            submission_id=submission.pk, moderator=moderator, outcome="reject", reason_code="ai-generated"
        )
    mine = submission_make(contributor=contributor, data=image_bytes(seed=8))
    services.submission_decide(submission_id=mine.pk, moderator=moderator, outcome="reject", reason_code="ai-generated")
    call_command("export_decisions", str(tmp_path / "d"), since="2000-01-01", stdout=io.StringIO())
    samples = folder_scan(folder=tmp_path / "d")
    assert len(samples) == 2 and len({s.group for s in samples}) == 1


def test_the_export_refuses_a_folder_that_is_not_empty_and_skips_older_decisions(decided_uploads, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x.txt").write_text("other data")
    with pytest.raises(CommandError, match="not an empty folder"):
        call_command("export_decisions", str(tmp_path / "used"), since="2000-01-01", stdout=io.StringIO())
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    call_command("export_decisions", str(tmp_path / "later"), since=tomorrow, stdout=io.StringIO())
    assert folder_scan(folder=tmp_path / "later") == []


def test_compare_detectors_scores_the_active_model_on_the_decided_set(decided_uploads, tiny_detector, tmp_path):
    call_command("export_decisions", str(tmp_path / "decided"), since="2000-01-01", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "compare_detectors", models=[tiny_detector], decided=tmp_path / "decided", recall=[0.5, 1.0], stdout=out
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "false flags at recall 0.5 / 1"
    assert lines[1].startswith(f"{tiny_detector}: ") and lines[1].count("%") == 2


def test_the_export_round_trips_through_train_detector_with_contributors_kept_apart(
    decided_uploads, settings, tmp_path
):
    import json

    call_command("export_decisions", str(tmp_path / "decided"), since="2000-01-01", stdout=io.StringIO())
    settings.DETECTOR_WEIGHTS_DIR = tmp_path / "weights"
    call_command(
        "train_detector",
        arch="mobilenet_v2",
        data=[tmp_path / "decided"],
        name="from_decisions",
        imagenet_start=False,  # no download in tests
        epochs=1,
        image_size=32,
        batch_size=4,
        stdout=io.StringIO(),
    )
    bundle = tmp_path / "weights" / "from_decisions"
    split = json.loads((bundle / "split.json").read_text())
    sides = {}
    for name, rows in split["splits"].items():
        for _folder, _path, _label, _scenery, group, _source in rows:
            sides.setdefault(group, set()).add(name)
    assert len(sides) == 3 and all(len(names) == 1 for names in sides.values())
    card = json.loads((bundle / "card.json").read_text())
    assert card["training"]["val_images"] > 0
    assert (bundle / "heldout_scores.json").is_file()
