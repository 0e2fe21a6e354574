"""Statistics: the filter input and the figures."""

from rest_framework import serializers

from moderation.reporting import SCENERY_BY_CHOICES


class StatisticsFilterSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="Uploaded on or after this date (UTC).")
    date_to = serializers.DateField(required=False, help_text="Uploaded on or before this date (UTC).")
    model = serializers.CharField(required=False, max_length=64, help_text="Model name; the active one by default.")
    scenery_by = serializers.ChoiceField(
        choices=SCENERY_BY_CHOICES,
        default="declared",
        help_text="Group per-scenery figures by the scenery the contributor declared or the one suggested from the "
        'image during analysis (uploads analysed without a suggestion have a row of their own, scenery "").',
    )


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


class LiveFiguresSerializer(serializers.Serializer):
    submissions = serializers.IntegerField()
    flagged = serializers.IntegerField()
    spot_checked = serializers.IntegerField(help_text="Cleared uploads drawn for a moderator's spot check.")
    human_share = serializers.FloatField(allow_null=True, help_text="Share of uploads flagged or spot-checked.")
    decided = serializers.IntegerField(help_text="Final decisions the estimates rest on.")
    real_decided = serializers.IntegerField()
    ai_decided = serializers.IntegerField()
    false_flag_rate = serializers.FloatField(
        allow_null=True, help_text="Estimated share of genuine (approved) photos the model flagged."
    )
    false_flag_low = serializers.FloatField(allow_null=True)
    false_flag_high = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField(allow_null=True, help_text="Estimated share of AI (rejected) images flagged.")
    recall_low = serializers.FloatField(allow_null=True)
    recall_high = serializers.FloatField(allow_null=True)
    unsampled = serializers.IntegerField(
        help_text="Uploads of a stratum without any decision (cleared, never spot-checked): rates are then null."
    )


class LiveVersionSerializer(LiveFiguresSerializer):
    version = serializers.CharField()


class LiveScenerySerializer(LiveFiguresSerializer):
    scenery = serializers.CharField()
    label = serializers.CharField()


class LiveWeekSerializer(LiveFiguresSerializer):
    week = serializers.DateField(help_text="The Monday of the upload week (UTC).")


class LiveStatisticsSerializer(serializers.Serializer):
    confidence = serializers.FloatField(help_text="Confidence of the Wilson bounds.")
    overall = LiveFiguresSerializer()
    versions = LiveVersionSerializer(many=True)
    sceneries = LiveScenerySerializer(many=True)
    weeks = LiveWeekSerializer(many=True)


class StatisticsSerializer(serializers.Serializer):
    model_name = serializers.CharField()
    date_from = serializers.DateField(allow_null=True)
    date_to = serializers.DateField(allow_null=True)
    scenery_by = serializers.CharField(help_text="What the per-scenery figures group by: declared or suggested.")
    overall = FiguresSerializer()
    sceneries = SceneryFiguresSerializer(many=True)
    days = DayFiguresSerializer(many=True)
    live = LiveStatisticsSerializer(help_text="Live error rates, estimated over flagged uploads and spot checks.")
