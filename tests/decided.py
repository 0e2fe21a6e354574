"""Analysed and decided uploads in bulk, for figures that need hundreds of decisions."""

from itertools import count

from django.utils import timezone

from detection.models import Detection
from moderation.counters import statistics_counts_rebuild
from moderation.models import State, Submission

_numbers = count(10_000)


def uploads_analysed(*, contributor, model_name: str, version: str, rows: list[tuple]) -> list[Submission]:
    """One upload per (score, routed verdict, final state, spot-checked) row, with its Detection; a state of
    None leaves it undecided (flagged or cleared as the verdict routed it)."""
    now = timezone.now()
    submissions = []
    for score, verdict, state, spot_checked in rows:
        n = next(_numbers)
        routed = State.CLEARED if verdict == "real" else State.FLAGGED
        submissions.append(
            Submission(
                contributor=contributor,
                original=f"originals/{n:064x}.jpg",
                original_name=f"p{n}.jpg",
                sha256=f"{n:064x}",
                image_format="JPEG",
                width=96,
                height=64,
                size_bytes=1000,
                scenery="forest",
                state=state or routed,
                state_changed_at=now,
                ai_probability=score,
                verdict=verdict,
                spot_check_share=0.1 if spot_checked else None,
            )
        )
    created = Submission.objects.bulk_create(submissions)
    Detection.objects.bulk_create(
        Detection(
            submission=s,
            model_name=model_name,
            model_version=version,
            ai_probability=s.ai_probability,
            verdict=s.verdict,
            threshold_low=0.3,
            threshold_high=0.5,
            latency_ms=1,
        )
        for s in created
    )
    statistics_counts_rebuild()  # written around the services, so counted the way an import would be
    return created
