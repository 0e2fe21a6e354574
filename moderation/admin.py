from django.contrib import admin

from moderation.models import Appeal, Decision, DecisionReason, Submission


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "contributor", "scenery", "state", "verdict", "ai_probability", "created_at"]
    list_filter = ["state", "scenery", "verdict"]
    search_fields = ["original_name", "sha256", "contributor__username"]
    readonly_fields = [f.name for f in Submission._meta.fields]


@admin.register(DecisionReason)
class DecisionReasonAdmin(admin.ModelAdmin):
    list_display = ["label", "code", "applies_to", "active", "position"]
    list_editable = ["active", "position"]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["submission", "stage", "outcome", "reason", "moderator", "created_at"]
    list_filter = ["stage", "outcome"]
    readonly_fields = [f.name for f in Decision._meta.fields]


@admin.register(Appeal)
class AppealAdmin(admin.ModelAdmin):
    list_display = ["submission", "contributor", "created_at"]
    readonly_fields = [f.name for f in Appeal._meta.fields]
