from django.conf import settings
from django.db import models


class Scenery(models.TextChoices):
    BUILDINGS = "buildings", "Buildings"
    FOREST = "forest", "Forest"
    GLACIER = "glacier", "Glacier"
    MOUNTAIN = "mountain", "Mountain"
    SEA = "sea", "Sea"
    STREET = "street", "Street"
    OTHER = "other", "Other"


class Verdict(models.TextChoices):
    AI = "ai", "AI-generated"
    REAL = "real", "Real photo"
    UNCERTAIN = "uncertain", "Uncertain"


class Detection(models.Model):
    """One model's result on one submission; a model version never runs twice on the same submission."""

    submission = models.ForeignKey("moderation.Submission", on_delete=models.CASCADE, related_name="detections")
    model_name = models.CharField(max_length=64)
    model_version = models.CharField(max_length=64)
    ai_probability = models.FloatField()
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    threshold_low = models.FloatField()
    threshold_high = models.FloatField()
    latency_ms = models.FloatField(help_text="Inference time; 0 when the result was reused for identical bytes.")
    variant_probability = models.FloatField(
        null=True,
        blank=True,
        help_text="Score after a mild re-encoding, where the model checks its verdict is stable.",
    )
    reused_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "model_name", "model_version"], name="detection_once_per_model_version"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.model_name}@{self.model_version}: {self.ai_probability:.3f} ({self.verdict})"


class Heatmap(models.Model):
    """A Grad-CAM overlay of one detection at one layer: made for flagged images, others on demand."""

    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="heatmaps")
    layer = models.CharField(max_length=64)
    image = models.FileField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["detection", "layer"], name="heatmap_once_per_layer")]

    def __str__(self) -> str:
        return f"{self.detection_id}:{self.layer}"


class ModelSetting(models.Model):
    """The admin's choice of active model and per-scenery threshold overrides (else the model card's)."""

    model_name = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=False)
    # {"<scenery>": {"low": float, "high": float}}; missing sceneries use the model card.
    thresholds = models.JSONField(default=dict, blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="modelsetting_single_active"
            ),
        ]

    def __str__(self) -> str:
        return self.model_name


class Evidence(models.Model):
    """A provenance finding read from the file's metadata (C2PA, XMP, EXIF, PNG text)."""

    class Suggests(models.TextChoices):
        AI = "ai", "Generative AI"
        CAMERA = "camera", "Camera capture"
        EDITED = "edited", "Edited"
        NEUTRAL = "neutral", "Neutral"
        UNREADABLE = "unreadable", "Unreadable metadata"

    submission = models.ForeignKey("moderation.Submission", on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=16)
    key = models.CharField(max_length=128)
    value = models.TextField()
    suggests = models.CharField(max_length=16, choices=Suggests.choices)
    detail = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "key"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "kind", "key", "value"], name="evidence_once_per_finding"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}={self.value[:40]}"


class SelfTestResult(models.Model):
    """The latest golden-output self-test of one model on one host (a worker at start, `./dev`, an analysis
    that refused the model): a model failing it anywhere is shown on the settings page and fails /health/."""

    model_name = models.CharField(max_length=64)
    model_version = models.CharField(max_length=64, blank=True)
    host = models.CharField(max_length=255)
    passed = models.BooleanField()
    detail = models.TextField(blank=True, help_text="Why the model was refused: what drifted, this CPU, the runtimes.")
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_name", "host"], name="selftest_once_per_model_host")]
        ordering = ["model_name", "host"]

    def __str__(self) -> str:
        return f"{self.model_name}@{self.host}: {'passed' if self.passed else 'refused'}"


class ThresholdChange(models.Model):
    """One change of a model's threshold overrides, with what was in force before, so any change can be
    undone; recalibrations keep the before/after rates they were confirmed on."""

    class Kind(models.TextChoices):
        MANUAL = "manual", "Set by hand"
        RECALIBRATION = "recalibration", "Recalibrated on decisions"
        REVERT = "revert", "Reverted"

    model_name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    thresholds_before = models.JSONField(default=dict, blank=True)
    thresholds_after = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    reverts = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reverted_by")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model_name", "-created_at"], name="thresholdchange_model_idx")]

    def __str__(self) -> str:
        return f"{self.model_name}: {self.get_kind_display()} #{self.pk}"
