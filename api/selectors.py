"""Reads the API adds on top of moderation.selectors: filtering and ordering what a user may see."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, QuerySet

from moderation.models import Submission
from moderation.selectors import QueueFilters, submissions_filter, submissions_visible_to

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
    return submissions_filter(submissions=submissions, filters=filters).order_by(*ORDERINGS[ordering])


def submission_detail_get(*, user: AbstractBaseUser, submission_id: int) -> Submission:
    """Raises Submission.DoesNotExist for ids the user may not see, so others' submissions read as missing."""
    return submissions_visible_to(user=user).prefetch_related("detections__heatmaps", "evidence").get(pk=submission_id)


def submission_visible_get(*, user: AbstractBaseUser, submission_id: int) -> Submission:
    """Raises Submission.DoesNotExist (a 404) for ids the user may not see."""
    return submissions_visible_to(user=user).get(pk=submission_id)
