"""Appeals: the contributor's input, and the appeal as both audiences see it."""

from rest_framework import serializers

from moderation.models import Appeal


class AppealSerializer(serializers.ModelSerializer):
    submission = serializers.IntegerField(source="submission_id")
    contributor = serializers.CharField(source="contributor.username")

    class Meta:
        model = Appeal
        fields = ["id", "submission", "contributor", "message", "created_at"]


class AppealInputSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=4000, help_text="Why the image is a genuine photograph.")
