"""Submissions: upload and filter input, and output chosen by audience. Reviewers get per-model scores,
heatmaps, evidence and moderators' names; contributors get the outcome, never what would help tune an image
past the detector. The view picks the class; nothing here looks at the request's user."""

import dataclasses

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.selectors import ORDERINGS
from api.serializers.appeals import AppealSerializer
from api.serializers.common import absolute_url
from audit.models import AuditEvent
from audit.selectors import audit_trail
from common.errors import Invalid
from detection.models import Detection, Evidence
from moderation import selectors
from moderation.forms import declared_ai_parse
from moderation.models import Decision, Scenery, State, Submission, Verdict


class DeclaredAiField(serializers.BooleanField):
    """Read by the upload page's parser, so both refuse the same values with the same message."""

    def to_internal_value(self, data: object) -> bool:
        try:
            return declared_ai_parse(data)
        except Invalid as exc:
            raise serializers.ValidationError(str(exc)) from exc


class SubmissionCreateInputSerializer(serializers.Serializer):
    # Empty files are passed on so submission_create refuses them per file, like the upload page does.
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), min_length=1)
    scenery = serializers.ListField(
        child=serializers.ChoiceField(choices=Scenery.choices),
        min_length=1,
        help_text="One scenery for all files, or one per file in the same order.",
    )
    declared_ai = serializers.ListField(
        child=DeclaredAiField(),
        required=False,
        help_text="Made with generative AI: one value for all files, or one per file. Default false.",
    )

    def validate(self, data: dict) -> dict:
        count = len(data["files"])
        for name in ("scenery", "declared_ai"):
            values = data.get(name, [False])
            if len(values) == 1:
                data[name] = values * count
            elif len(values) != count:
                raise serializers.ValidationError({name: f"Give one value for all files or one per file ({count})."})
        return data


class UploadResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    id = serializers.IntegerField(required=False)
    url = serializers.URLField(required=False)
    error = serializers.CharField(required=False)


class UploadResultsSerializer(serializers.Serializer):
    results = UploadResultSerializer(many=True)


class QueueFilterSerializer(serializers.Serializer):
    scenery = serializers.ChoiceField(choices=Scenery.choices, required=False)
    verdict = serializers.ChoiceField(choices=Verdict.choices, required=False)
    min_probability = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    max_probability = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    model = serializers.CharField(required=False, max_length=64, help_text="Has a detection by this model.")
    contributor = serializers.CharField(required=False, max_length=150, help_text="Contributor's username.")
    created_from = serializers.DateField(required=False, help_text="Created on or after this date (UTC).")
    created_to = serializers.DateField(required=False, help_text="Created on or before this date (UTC).")

    def validate(self, data: dict) -> dict:
        low, high = data.get("min_probability"), data.get("max_probability")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_probability": "Must not be above max_probability."})
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            raise serializers.ValidationError({"created_from": "Must not be after created_to."})
        return data

    def queue_filters(self) -> selectors.QueueFilters:
        data = self.validated_data
        return selectors.QueueFilters(
            scenery=data.get("scenery", ""),
            verdict=data.get("verdict", ""),
            probability_min=data.get("min_probability"),
            probability_max=data.get("max_probability"),
            model_name=data.get("model", ""),
            date_from=data.get("created_from"),
            date_to=data.get("created_to"),
            contributor=data.get("contributor", ""),
        )


class QueueQuerySerializer(QueueFilterSerializer):
    tab = serializers.ChoiceField(
        choices=list(selectors.QUEUE_TABS),
        required=False,
        default="flagged",
        help_text="flagged: the review queue; spot_check: cleared uploads drawn for a spot check (SPOT_CHECK_SHARE).",
    )
    ordering = serializers.ChoiceField(
        choices=list(selectors.QUEUE_ORDERINGS),
        required=False,
        default="likely-ai",
        help_text="likely-ai: most likely AI first; oldest: longest waiting first.",
    )
    after = serializers.CharField(
        required=False, max_length=200, help_text="The page after this position: a `next` link's cursor."
    )
    before = serializers.CharField(
        required=False, max_length=200, help_text="The page before this position: a `previous` link's cursor."
    )

    def queue_filters(self) -> selectors.QueueFilters:
        return dataclasses.replace(super().queue_filters(), ordering=self.validated_data["ordering"])


class SubmissionFilterSerializer(QueueFilterSerializer):
    """The list's filters. Those by the detector's output are refused (400) unless the view says, in the context's
    `scores_visible`, that the user may see scores: a contributor could otherwise read them back by filtering."""

    state = serializers.ChoiceField(choices=State.choices, required=False)
    ordering = serializers.ChoiceField(choices=list(ORDERINGS), required=False, default="-created_at")

    SCORE_FILTERS = ("verdict", "min_probability", "max_probability", "model")

    def validate(self, data: dict) -> dict:
        data = super().validate(data)
        if not self.context.get("scores_visible", False):
            refused = [name for name in self.SCORE_FILTERS if name in data]
            refused += ["ordering"] if "ai_probability" in data["ordering"] else []
            if refused:
                raise serializers.ValidationError(
                    {name: "Filtering or ordering by the detector's scores is for moderators." for name in refused}
                )
        return data


class SubmissionSerializer(serializers.ModelSerializer):
    contributor = serializers.CharField(source="contributor.username")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id",
            "url",
            "original_name",
            "contributor",
            "scenery",
            "suggested_scenery",
            "declared_ai",
            "state",
            "verdict",
            "ai_probability",
            "created_at",
            "state_changed_at",
        ]

    def get_url(self, submission: Submission) -> str:
        return absolute_url(self, reverse("api:submission-detail", args=[submission.pk]))


SCORE_FIELDS = ("ai_probability", "verdict")


class ContributorFieldsMixin:
    """What a contributor reads of a submission: no score or verdict (unless CONTRIBUTORS_SEE_SCORES) and a
    generic failure reason (moderation.selectors.submission_for_contributor)."""

    def get_fields(self) -> dict:
        fields = super().get_fields()
        if not settings.CONTRIBUTORS_SEE_SCORES:
            for name in SCORE_FIELDS:
                fields.pop(name)
        return fields

    def to_representation(self, submission: Submission) -> dict:
        return super().to_representation(selectors.submission_for_contributor(submission=submission))


class ContributorSubmissionSerializer(ContributorFieldsMixin, SubmissionSerializer):
    pass


def submission_serializer_for(*, user: AbstractBaseUser) -> type[SubmissionSerializer]:
    """The list's audience: reviewers (and contributors where CONTRIBUTORS_SEE_SCORES) see scores and verdicts."""
    if user.has_perm("moderation.review_submission"):
        return SubmissionSerializer
    return ContributorSubmissionSerializer


class HeatmapSerializer(serializers.Serializer):
    layer = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, heatmap) -> str:
        return absolute_url(self, reverse("api:heatmap-image", args=[heatmap.pk]))


class DetectionSerializer(serializers.ModelSerializer):
    heatmaps = serializers.SerializerMethodField()

    class Meta:
        model = Detection
        fields = [
            "model_name",
            "model_version",
            "ai_probability",
            "verdict",
            "threshold_low",
            "threshold_high",
            "latency_ms",
            "created_at",
            "heatmaps",
        ]

    @extend_schema_field(HeatmapSerializer(many=True))
    def get_heatmaps(self, detection: Detection) -> list[dict]:
        return HeatmapSerializer(detection.heatmaps.all(), many=True, context=self.context).data


class EvidenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Evidence
        fields = ["kind", "key", "value", "suggests", "detail"]


class DecisionSerializer(serializers.ModelSerializer):
    reason = serializers.CharField(source="reason.code")
    reason_label = serializers.CharField(source="reason.label")
    moderator = serializers.SerializerMethodField(help_text="Shown to moderators only.")

    class Meta:
        model = Decision
        fields = ["stage", "outcome", "reason", "reason_label", "note", "moderator", "created_at"]

    def get_moderator(self, decision: Decision) -> str | None:
        return decision.moderator.username


class ContributorDecisionSerializer(DecisionSerializer):
    def get_moderator(self, decision: Decision) -> None:
        return None


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField(help_text="Shown to moderators only; null for the system.")

    class Meta:
        model = AuditEvent
        fields = ["action", "from_state", "to_state", "actor", "reason", "created_at"]

    def get_actor(self, event: AuditEvent) -> str | None:
        return event.actor.username if event.actor else None


class ContributorAuditEventSerializer(AuditEventSerializer):
    def get_actor(self, event: AuditEvent) -> None:
        return None


# What a reviewer sees (a comment, not a docstring: the schema documents the fields for both audiences);
# ContributorSubmissionDetailSerializer is the contributor's view of it.
class SubmissionDetailSerializer(SubmissionSerializer):
    decision_serializer = DecisionSerializer
    audit_event_serializer = AuditEventSerializer
    original_url = serializers.SerializerMethodField()
    detections = serializers.SerializerMethodField(help_text="Moderators only; empty for contributors.")
    evidence = serializers.SerializerMethodField(help_text="Moderators only; empty for contributors.")
    decision = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()
    appeal = serializers.SerializerMethodField()
    audit_trail = serializers.SerializerMethodField()

    class Meta(SubmissionSerializer.Meta):
        fields = [
            *SubmissionSerializer.Meta.fields,
            "failure_reason",
            "original_url",
            "image_format",
            "width",
            "height",
            "size_bytes",
            "sha256",
            "detections",
            "evidence",
            "decision",
            "decisions",
            "appeal",
            "audit_trail",
        ]

    def get_original_url(self, submission: Submission) -> str:
        return absolute_url(self, reverse("api:submission-original", args=[submission.pk]))

    @extend_schema_field(DetectionSerializer(many=True))
    def get_detections(self, submission: Submission) -> list[dict]:
        return DetectionSerializer(submission.detections.all(), many=True, context=self.context).data

    @extend_schema_field(EvidenceSerializer(many=True))
    def get_evidence(self, submission: Submission) -> list[dict]:
        return EvidenceSerializer(submission.evidence.all(), many=True).data

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, submission: Submission) -> dict | None:
        """The final decision: the appeal's when there was one, else the review's."""
        decision = submission.final_decision
        return self.decision_serializer(decision, context=self.context).data if decision else None

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, submission: Submission) -> list[dict]:
        return self.decision_serializer(submission.decisions_made, many=True, context=self.context).data

    @extend_schema_field(AppealSerializer(allow_null=True))
    def get_appeal(self, submission: Submission) -> dict | None:
        appeal = getattr(submission, "appeal", None)
        return AppealSerializer(appeal).data if appeal else None

    @extend_schema_field(AuditEventSerializer(many=True))
    def get_audit_trail(self, submission: Submission) -> list[dict]:
        events = audit_trail(submission_id=submission.pk)
        return self.audit_event_serializer(events, many=True, context=self.context).data


class ContributorSubmissionDetailSerializer(ContributorFieldsMixin, SubmissionDetailSerializer):
    """The outcome without the reviewers' material: no scores, heatmaps, evidence, names or failure details."""

    decision_serializer = ContributorDecisionSerializer
    audit_event_serializer = ContributorAuditEventSerializer

    @extend_schema_field(AuditEventSerializer(many=True))
    def get_audit_trail(self, submission: Submission) -> list[dict]:
        events = selectors.audit_trail_for_contributor(submission_id=submission.pk)
        return self.audit_event_serializer(events, many=True, context=self.context).data

    def get_detections(self, submission: Submission) -> list[dict]:
        return []

    def get_evidence(self, submission: Submission) -> list[dict]:
        return []


def submission_detail_serializer_for(*, user: AbstractBaseUser) -> type[SubmissionDetailSerializer]:
    """The detail's audience: reviewers see everything, contributors the outcome."""
    if user.has_perm("moderation.review_submission"):
        return SubmissionDetailSerializer
    return ContributorSubmissionDetailSerializer


class DecisionInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Decision.Outcome.choices)
    reason = serializers.CharField(max_length=40, help_text="Code of an active reason that applies to the outcome.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ReanalysisInputSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=64, help_text="Name of a model with trained weights.")


class QueuePageSerializer(serializers.Serializer):
    """A page of the queue by position (keyset), not by number: follow `next` and `previous`."""

    count = serializers.IntegerField(help_text="Items waiting in this tab with these filters.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SubmissionSerializer(many=True)
