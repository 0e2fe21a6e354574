"""What every resource's serializers share."""

from rest_framework import serializers


def absolute_url(serializer: serializers.Serializer, url: str) -> str:
    request = serializer.context.get("request")
    return request.build_absolute_uri(url) if request else url


class MessageSerializer(serializers.Serializer):
    detail = serializers.CharField()
