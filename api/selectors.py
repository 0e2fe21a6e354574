"""Reads the API adds on top of moderation.selectors: filtering and ordering what a user may see."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, F, OuterRef, QuerySet

from detection.models import Detection
from moderation.models import Submission
from moderation.selectors import QueueFilters, submissions_visible_to

ORDERINGS = {
    "-created_at": [F("created_at").desc(), F("id").desc()],
    "created_at": [F("created_at").asc(), F("id").asc()],
    "-ai_probability": [F("ai_probability").desc(nulls_last=True), F("id").desc()],
    "ai_probability": [F("ai_probability").asc(nulls_last=True), F("id").asc()],
}


def submission_list(
    *, user: AbstractBaseUser, filters: QueueFilters, state: str = "", ordering: str = "-created_at"
) -> QuerySet[Submission]:
    """The user's visible submissions in any state, narrowed like the review queue is."""
    submissions = submissions_visible_to(user=user)
    if state:
        submissions = submissions.filter(state=state)
    if filters.scenery:
        submissions = submissions.filter(scenery=filters.scenery)
    if filters.verdict:
        submissions = submissions.filter(verdict=filters.verdict)
    if filters.probability_min is not None:
        submissions = submissions.filter(ai_probability__gte=filters.probability_min)
    if filters.probability_max is not None:
        submissions = submissions.filter(ai_probability__lte=filters.probability_max)
    if filters.model_name:
        ran = Detection.objects.filter(submission=OuterRef("pk"), model_name=filters.model_name)
        submissions = submissions.filter(Exists(ran))
    if filters.contributor:
        submissions = submissions.filter(contributor__username=filters.contributor)
    if filters.date_from:
        submissions = submissions.filter(created_at__date__gte=filters.date_from)
    if filters.date_to:
        submissions = submissions.filter(created_at__date__lte=filters.date_to)
    return submissions.order_by(*ORDERINGS[ordering])


def submission_detail_get(*, user: AbstractBaseUser, submission_id: int) -> Submission:
    """Raises Submission.DoesNotExist for ids the user may not see, so others' submissions read as missing."""
    return submissions_visible_to(user=user).prefetch_related("detections__heatmaps", "evidence").get(pk=submission_id)
