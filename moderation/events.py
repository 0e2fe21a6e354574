"""The webhook events moderation emits: it builds the payloads, the webhooks app only delivers them."""

from moderation.models import Submission
from moderation.selectors import submissions_visible_to
from webhooks.models import WebhookDelivery
from webhooks.services import webhook_event_emit


def _submission_payload(*, submission: Submission) -> dict:
    """What a webhook receiver learns about a submission: its outcome, never reviewer material."""
    data = {
        "id": submission.pk,
        "state": submission.state,
        "verdict": submission.verdict,
        "ai_probability": submission.ai_probability,
        "scenery": submission.scenery,
        "declared_ai": submission.declared_ai,
        "original_name": submission.original_name,
        "contributor": submission.contributor.get_username(),
        "created_at": submission.created_at.isoformat(),
        "state_changed_at": submission.state_changed_at.isoformat(),
    }
    # The final decision: the appeal's when there was one, else the review's.
    decision = submission.final_decision
    if decision is not None:
        data["decision"] = {
            "stage": decision.stage,
            "outcome": decision.outcome,
            "reason": decision.reason.code,
            "reason_label": decision.reason.label,
            "note": decision.note,
            "moderator": decision.moderator.get_username(),
            "created_at": decision.created_at.isoformat(),
        }
    return data


def submission_event_emit(*, event: str, submission_id: int) -> list[WebhookDelivery]:
    """Emit `event` about a submission, inside the transaction that changed it."""
    submission = Submission.objects.select_related("contributor").get(pk=submission_id)
    return webhook_event_emit(
        event=event,
        data={"submission": _submission_payload(submission=submission)},
        # A hook only ever carries what its owner may see now, so a demoted account stops receiving data: the
        # payload carries the score and the moderator's name, which are for reviewers.
        may_receive=lambda owner: (
            owner.has_perm("moderation.review_submission")
            and submissions_visible_to(user=owner).filter(pk=submission_id).exists()
        ),
    )
