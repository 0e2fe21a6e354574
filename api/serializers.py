"""Input and output shapes only; every rule lives in the services and selectors the views call."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.selectors import ORDERINGS
from audit.models import AuditEvent
from audit.selectors import audit_trail
from detection.models import Detection, Evidence
from moderation import selectors
from moderation.models import Appeal, Decision, Scenery, State, Submission, Verdict
from webhooks.models import Event, Webhook


def _absolute(serializer: serializers.Serializer, url: str) -> str:
    request = serializer.context.get("request")
    return request.build_absolute_uri(url) if request else url


def _for_reviewers(serializer: serializers.Serializer) -> bool:
    """Per-model scores, heatmaps, evidence and moderators' names are reviewer material, as on the web page:
    a contributor sees the outcome, not what would help tune an image past the detector."""
    request = serializer.context.get("request")
    return bool(request and request.user.has_perm("moderation.review_submission"))


# --- Submissions ----------------------------------------------------------------------


class SubmissionCreateInputSerializer(serializers.Serializer):
    # Empty files are passed on so submission_create refuses them per file, like the upload page does.
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), min_length=1)
    scenery = serializers.ListField(
        child=serializers.ChoiceField(choices=Scenery.choices),
        min_length=1,
        help_text="One scenery for all files, or one per file in the same order.",
    )
    declared_ai = serializers.ListField(
        child=serializers.BooleanField(),
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


class SubmissionFilterSerializer(QueueFilterSerializer):
    state = serializers.ChoiceField(choices=State.choices, required=False)
    ordering = serializers.ChoiceField(choices=list(ORDERINGS), required=False, default="-created_at")


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
            "declared_ai",
            "state",
            "verdict",
            "ai_probability",
            "created_at",
            "state_changed_at",
        ]

    def get_url(self, submission: Submission) -> str:
        return _absolute(self, reverse("api:submission-detail", args=[submission.pk]))


class HeatmapSerializer(serializers.Serializer):
    layer = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, heatmap) -> str:
        return _absolute(self, reverse("api:heatmap-image", args=[heatmap.pk]))


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
        return decision.moderator.username if _for_reviewers(self) else None


class AppealSerializer(serializers.ModelSerializer):
    submission = serializers.IntegerField(source="submission_id")
    contributor = serializers.CharField(source="contributor.username")

    class Meta:
        model = Appeal
        fields = ["id", "submission", "contributor", "message", "created_at"]


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField(help_text="Shown to moderators only; null for the system.")

    class Meta:
        model = AuditEvent
        fields = ["action", "from_state", "to_state", "actor", "reason", "created_at"]

    def get_actor(self, event: AuditEvent) -> str | None:
        return event.actor.username if event.actor and _for_reviewers(self) else None


class SubmissionDetailSerializer(SubmissionSerializer):
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
        return _absolute(self, reverse("api:submission-original", args=[submission.pk]))

    @extend_schema_field(DetectionSerializer(many=True))
    def get_detections(self, submission: Submission) -> list[dict]:
        if not _for_reviewers(self):
            return []
        return DetectionSerializer(submission.detections.all(), many=True, context=self.context).data

    @extend_schema_field(EvidenceSerializer(many=True))
    def get_evidence(self, submission: Submission) -> list[dict]:
        return EvidenceSerializer(submission.evidence.all(), many=True).data if _for_reviewers(self) else []

    @extend_schema_field(DecisionSerializer(allow_null=True))
    def get_decision(self, submission: Submission) -> dict | None:
        """The final decision: the appeal's when there was one, else the review's."""
        decision = submission.final_decision
        return DecisionSerializer(decision, context=self.context).data if decision else None

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, submission: Submission) -> list[dict]:
        return DecisionSerializer(submission.decisions_made, many=True, context=self.context).data

    @extend_schema_field(AppealSerializer(allow_null=True))
    def get_appeal(self, submission: Submission) -> dict | None:
        appeal = getattr(submission, "appeal", None)
        return AppealSerializer(appeal).data if appeal else None

    @extend_schema_field(AuditEventSerializer(many=True))
    def get_audit_trail(self, submission: Submission) -> list[dict]:
        return AuditEventSerializer(audit_trail(submission_id=submission.pk), many=True, context=self.context).data


class DecisionInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Decision.Outcome.choices)
    reason = serializers.CharField(max_length=40, help_text="Code of an active reason that applies to the outcome.")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AppealInputSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=4000, help_text="Why the image is a genuine photograph.")


class ReanalysisInputSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=64, help_text="Name of a model with trained weights.")


class MessageSerializer(serializers.Serializer):
    detail = serializers.CharField()


# --- Statistics -----------------------------------------------------------------------


class StatisticsFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="Uploaded on or after this date (UTC).")
    date_to = serializers.DateField(required=False, help_text="Uploaded on or before this date (UTC).")
    model = serializers.CharField(required=False, max_length=64, help_text="Model name; the active one by default.")


class FiguresSerializer(serializers.Serializer):
    submissions = serializers.IntegerField()
    flagged = serializers.IntegerField()
    flag_rate = serializers.FloatField(allow_null=True)
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    true_positives = serializers.IntegerField()
    false_positives = serializers.IntegerField()
    false_negatives = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True)
    f1 = serializers.FloatField(allow_null=True)
    median_latency_ms = serializers.FloatField(allow_null=True)


class SceneryFiguresSerializer(FiguresSerializer):
    scenery = serializers.CharField()
    label = serializers.CharField()


class DayFiguresSerializer(FiguresSerializer):
    day = serializers.DateField()


class StatisticsSerializer(serializers.Serializer):
    model_name = serializers.CharField()
    date_from = serializers.DateField(allow_null=True)
    date_to = serializers.DateField(allow_null=True)
    overall = FiguresSerializer()
    sceneries = SceneryFiguresSerializer(many=True)
    days = DayFiguresSerializer(many=True)


# --- Webhooks -------------------------------------------------------------------------


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="http(s) URL that receives signed POST requests.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=Event.choices), min_length=1)
    active = serializers.BooleanField(default=True)


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "created_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    """The secret is shown once, on creation; receivers need it to check X-Portal-Signature."""

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
