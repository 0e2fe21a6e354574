"""Webhooks: registration input, and the subscription (its secret shown once)."""

from rest_framework import serializers

from webhooks.models import Event, Webhook


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
