"""Statistics: the filter input and the figures."""

from rest_framework import serializers


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
