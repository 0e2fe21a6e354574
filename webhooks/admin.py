from django.contrib import admin
from django.db import models

from webhooks.models import Webhook, WebhookDelivery


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["event", "status", "attempts", "response_code", "error", "last_attempt_at", "delivered_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ["-created_at"]
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ["url", "owner", "events", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "owner__username"]
    readonly_fields = ["secret", "created_at"]
    raw_id_fields = ["owner"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    inlines = [WebhookDeliveryInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "webhook", "status", "attempts", "response_code", "last_attempt_at", "delivered_at"]
    list_filter = ["status", "event"]
    search_fields = ["webhook__url", "event_id"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
