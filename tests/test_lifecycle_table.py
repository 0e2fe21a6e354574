"""Every action from every state: the services allow exactly what moderation/lifecycle.py's table allows."""

import re
from pathlib import Path

import pytest

from audit.models import AuditEvent
from detection.audit import SettingsAction
from moderation import analysis, lifecycle, services
from moderation.lifecycle import TRANSITIONS, Action, State
from moderation.models import Appeal, Decision, DecisionReason, Submission
from tests.test_statistics import submission_row


def _appeal_decide(submission: Submission, moderator, second_moderator) -> None:
    Decision.objects.create(
        submission=submission,
        stage=Decision.Stage.REVIEW,
        moderator=second_moderator,
        outcome="reject",
        reason=DecisionReason.objects.get(code="ai-generated"),
    )
    appeal = Appeal.objects.create(submission=submission, contributor=submission.contributor, message="Mine.")
    services.appeal_decide(appeal_id=appeal.pk, moderator=moderator, outcome="reject", reason_code="ai-generated")


# Each action through the service that takes it; actions only the worker takes go through the transition.
ACT = {
    Action.QUEUE: lambda s, m, m2: services.submission_transition(submission_id=s.pk, action=Action.QUEUE),
    Action.ANALYSIS_START: lambda s, m, m2: (
        analysis.analyses_take(task_id=s.analysis_task_id, submission_id=s.pk) or _refused()
    ),
    Action.ANALYSE: lambda s, m, m2: services.submission_transition(
        submission_id=s.pk, action=Action.ANALYSE, to_state=State.FLAGGED
    ),
    Action.FAIL: lambda s, m, m2: services.submission_transition(submission_id=s.pk, action=Action.FAIL),
    Action.REQUEUE: lambda s, m, m2: services.submission_requeue(submission_id=s.pk, actor=m),
    Action.SWEEP: lambda s, m, m2: services.submission_requeue(submission_id=s.pk, actor=None, action=Action.SWEEP),
    Action.CLAIM: lambda s, m, m2: services.submission_claim(submission_id=s.pk, moderator=m) or _refused(),
    Action.DECIDE: lambda s, m, m2: services.submission_decide(
        submission_id=s.pk, moderator=m, outcome="approve", reason_code="detector-false-positive"
    ),
    Action.APPEAL: lambda s, m, m2: services.appeal_create(
        submission_id=s.pk, contributor=s.contributor, message="A photo I took."
    ),
    Action.APPEAL_DECIDE: _appeal_decide,
}


def _refused():
    raise services.TransitionRefused("refused")


def test_every_moving_action_and_every_claimable_state_is_in_the_walk():
    walked = set(ACT) | {Action.UPLOAD, Action.REANALYSIS_REQUEST, Action.REANALYSE}
    assert walked == set(TRANSITIONS)


@pytest.mark.parametrize("state", State.values)
@pytest.mark.parametrize("action", list(ACT))
def test_an_action_is_allowed_from_a_state_exactly_when_the_table_says_so(
    action, state, contributor, moderator, second_moderator
):
    submission = submission_row(contributor=contributor, n=1, state=state)
    rule = TRANSITIONS[action]
    try:
        ACT[action](submission, moderator, second_moderator)
    except services.TransitionRefused:
        allowed = False
    else:
        allowed = True
    assert allowed == lifecycle.can(action, state)
    submission.refresh_from_db()
    if not allowed:
        assert submission.state == state
        assert not AuditEvent.objects.filter(submission=submission).exists()
    elif rule.to_states:
        assert submission.state in rule.to_states
        event = AuditEvent.objects.get(submission=submission, action=action)
        assert (event.from_state, event.to_state) == (state, submission.state)
    else:
        assert submission.state == state


def test_a_transition_refuses_a_destination_its_action_does_not_lead_to(contributor):
    submission = submission_row(contributor=contributor, n=1, state=State.ANALYSING)
    with pytest.raises(ValueError, match="cannot lead to"):
        services.submission_transition(submission_id=submission.pk, action=Action.ANALYSE, to_state=State.APPROVED)
    submission.refresh_from_db()
    assert submission.state == State.ANALYSING


def test_the_audit_logs_action_choices_are_the_lifecycles_actions_and_the_detector_settings():
    choices = {value for value, _ in AuditEvent._meta.get_field("action").choices}
    assert choices == set(Action.values) | set(SettingsAction.values)


def test_the_readmes_lifecycle_diagram_is_the_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## How a submission moves", 1)[1]
    block = re.search(r"```\n(.*?)\n```", section, re.S).group(1)
    assert block == lifecycle.diagram()
