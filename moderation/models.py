from django.conf import settings
from django.db import models

from detection.models import Scenery, Verdict
from moderation.lifecycle import State


class Submission(models.Model):
    contributor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions")
    original = models.FileField(max_length=255)
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    image_format = models.CharField(max_length=8)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    scenery = models.CharField(max_length=16, choices=Scenery.choices)
    declared_ai = models.BooleanField("declared as made with generative AI", default=False)
    # What the scenery head saw in the image during analysis (blank: no head or encoder where it ran), so
    # statistics can be grouped by what the photo shows rather than what the contributor picked.
    suggested_scenery = models.CharField(max_length=16, choices=Scenery.choices, blank=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    state_changed_at = models.DateTimeField()
    failure_reason = models.TextField(blank=True)
    # Copied from the active model's Detection so the queue can sort 100,000 rows on an index.
    ai_probability = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True)
    # A moderator who opened the item holds it until claimed_until, so the queue offers it to nobody else.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    claimed_until = models.DateTimeField(null=True, blank=True)
    # SPOT_CHECK_SHARE when this cleared upload was drawn for a spot check (else null): its decision then stands
    # for 1/share cleared uploads in the live error rates.
    spot_check_share = models.FloatField(null=True, blank=True)
    # The analysis task (Celery task id) that took this submission into its batch: a redelivery or retry of that
    # task resumes it, while another message for it leaves it to that task (moderation.analysis.analyses_take).
    analysis_task_id = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [
            ("review_submission", "Can review flagged submissions and decide on them"),
            ("view_all_submissions", "Can see every contributor's submissions"),
            ("view_statistics", "Can see statistics and model reports"),
            ("configure_detector", "Can choose the active model and thresholds"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["contributor", "sha256"], name="submission_unique_bytes_per_contributor"),
        ]
        indexes = [
            models.Index(fields=["state", "-ai_probability"], name="submission_queue_idx"),
            models.Index(fields=["state", "state_changed_at"], name="submission_state_age_idx"),
            models.Index(fields=["contributor", "-created_at"], name="submission_contributor_idx"),
            # Partial indexes in exactly the review queue's two orderings, so a page is an index scan. A flagged
            # item always has a probability, so no NULLS LAST is needed (SQLite cannot index one).
            models.Index(
                fields=["-ai_probability", "state_changed_at", "id"],
                condition=models.Q(state="flagged"),
                name="submission_flagged_likely_idx",
            ),
            models.Index(
                fields=["state_changed_at", "id"],
                condition=models.Q(state="flagged"),
                name="submission_flagged_oldest_idx",
            ),
            models.Index(fields=["created_at"], name="submission_created_idx"),
            models.Index(
                fields=["-ai_probability", "state_changed_at", "id"],
                condition=models.Q(state="cleared", spot_check_share__isnull=False),
                name="submission_spot_check_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.original_name}"

    @property
    def final_decision(self) -> "Decision | None":
        """The decision that stands: the appeal's when there was one, else the review's.

        Uses `decisions_made` when the selector prefetched it, so a list of rows costs no query each.
        """
        decisions = getattr(self, "decisions_made", None)
        if decisions is not None:
            return decisions[-1] if decisions else None
        return self.decisions.select_related("reason", "moderator").order_by("-created_at", "-id").first()


class DecisionReason(models.Model):
    """The list moderators pick a reason from; admins edit it in the Django admin."""

    class Applies(models.TextChoices):
        APPROVE = "approve", "Approval"
        REJECT = "reject", "Rejection"

    code = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=120)
    applies_to = models.CharField(max_length=8, choices=Applies.choices)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["applies_to", "position", "label"]

    def __str__(self) -> str:
        return self.label


class Decision(models.Model):
    """At most one decision per stage: the review, and the appeal's if the contributor appealed."""

    class Outcome(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"

    class Stage(models.TextChoices):
        REVIEW = "review", "Review"
        APPEAL = "appeal", "Appeal"

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="decisions")
    stage = models.CharField(max_length=8, choices=Stage.choices, default=Stage.REVIEW)
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    reason = models.ForeignKey(DecisionReason, on_delete=models.PROTECT)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["submission", "stage"], name="decision_once_per_stage"),
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} #{self.submission_id} ({self.stage})"


class Appeal(models.Model):
    """A contributor's one appeal against a rejection; its outcome is the Decision of stage "appeal"."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="appeal")
    contributor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appeals")
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Appeal on #{self.submission_id}"


# Statistics counters -------------------------------------------------------------------------------------------
# The statistics page reads these instead of every detection: moderation.counters keeps them in step with the
# submissions and detections (in the transaction of each write) and rebuilds them from those raw rows.


class StatisticsKey(models.Model):
    """What the figures group and count detections by: the model's result and its submission's upload day,
    sceneries, state, routing and spot check. `latest` marks the model's latest version's result on the upload,
    the one that counts everywhere but in the per-version live rates."""

    model_name = models.CharField(max_length=64)
    model_version = models.CharField(max_length=64)
    day = models.DateField(help_text="Upload day (UTC).")
    scenery = models.CharField(max_length=16)
    suggested_scenery = models.CharField(max_length=16)
    state = models.CharField(max_length=16)
    routed = models.CharField(max_length=16, help_text="The submission's verdict, which routed it; blank before.")
    spot_checked = models.BooleanField()
    verdict = models.CharField(max_length=16, help_text="This model version's verdict.")
    latest = models.BooleanField()

    KEY_FIELDS = (
        "model_name",
        "model_version",
        "day",
        "scenery",
        "suggested_scenery",
        "state",
        "routed",
        "spot_checked",
        "verdict",
        "latest",
    )

    class Meta:
        abstract = True


class Period(models.TextChoices):
    """A counter row counts one upload day, or (rolled up) one calendar month from its first day, so that
    figures over many months read a row per month rather than per day."""

    DAY = "day", "Day"
    MONTH = "month", "Month"


class StatisticsCount(StatisticsKey):
    """How many detections share one key in one period (`day` is its first day); rows whose count fell to zero
    are kept (they add nothing)."""

    period = models.CharField(max_length=5, choices=Period.choices)
    n = models.BigIntegerField(default=0)

    COUNTER_FIELDS = ("period", *StatisticsKey.KEY_FIELDS)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period", *StatisticsKey.KEY_FIELDS], name="statisticscount_once_per_key")
        ]
        indexes = [models.Index(fields=["model_name", "period", "day"], name="statscount_model_day_idx")]

    def __str__(self) -> str:
        return f"{self.model_name}@{self.model_version} {self.day} {self.scenery}: {self.n}"


class StatisticsLatency(models.Model):
    """A latency histogram: how many latest results of a model on one period's uploads took about `latency_ms`
    (rounded to moderation.counters.latency_bucket), so a median needs no scan of results. Each result is
    counted three times, so that each figure reads the smallest histogram it can: with `scenery_by` blank over
    all sceneries (per day, overall), and per `scenery` by "declared" and by "suggested" scenery."""

    model_name = models.CharField(max_length=64)
    period = models.CharField(max_length=5, choices=Period.choices)
    day = models.DateField()
    scenery_by = models.CharField(max_length=16)
    scenery = models.CharField(max_length=16)
    latency_ms = models.FloatField()
    n = models.BigIntegerField(default=0)

    COUNTER_FIELDS = ("model_name", "period", "day", "scenery_by", "scenery", "latency_ms")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_name", "period", "day", "scenery_by", "scenery", "latency_ms"],
                name="statisticslatency_once_per_key",
            )
        ]
        indexes = [
            models.Index(fields=["model_name", "scenery_by", "period", "day"], name="statslatency_model_day_idx")
        ]

    def __str__(self) -> str:
        return f"{self.model_name} {self.day} {self.scenery_by}:{self.scenery} {self.latency_ms} ms: {self.n}"


class StatisticsDay(models.Model):
    """The counts of StatisticsCount per upload day with the sceneries and versions pooled: the few rows the
    per-day figures and the live weeks read."""

    model_name = models.CharField(max_length=64)
    day = models.DateField()
    state = models.CharField(max_length=16)
    routed = models.CharField(max_length=16)
    spot_checked = models.BooleanField()
    verdict = models.CharField(max_length=16)
    latest = models.BooleanField()
    n = models.BigIntegerField(default=0)

    COUNTER_FIELDS = ("model_name", "day", "state", "routed", "spot_checked", "verdict", "latest")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model_name", "day", "state", "routed", "spot_checked", "verdict", "latest"],
                name="statisticsday_once_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_name} {self.day}: {self.n}"


class StatisticsDayMedian(models.Model):
    """The median latency of a model's latest results on one day's uploads (null: none timed), as the pooled
    daily histogram gives it, recomputed whenever that histogram changes: per-day figures need no histogram."""

    model_name = models.CharField(max_length=64)
    day = models.DateField()
    median_latency_ms = models.FloatField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_name", "day"], name="statisticsdaymedian_once_per_day")]

    def __str__(self) -> str:
        return f"{self.model_name} {self.day}: {self.median_latency_ms} ms"


class StatisticsEntry(StatisticsKey):
    """What one detection is counted as now, so the next write to its submission can take exactly that back."""

    # No database constraint and no cascade: an entry outlives a deleted detection or submission, so that the
    # next refresh (or a rebuild) can take back what it was counted as.
    detection = models.OneToOneField(
        "detection.Detection", on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="+"
    )
    submission = models.ForeignKey(Submission, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    latency_ms = models.FloatField(null=True, help_text="Its latency bucket; null when left out of the medians.")

    def __str__(self) -> str:
        return f"detection {self.detection_id}"
