"""Per-scenery and per-day statistics (admins)."""

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.permissions import CanViewStatistics
from api.serializers.stats import StatisticsFilterSerializer, StatisticsSerializer
from moderation import reporting


class StatisticsView(APIView):
    permission_classes = [IsAuthenticated, CanViewStatistics]

    @extend_schema(
        summary="Flag rate, precision, recall and latency per scenery and per day, and live error rates (admins)",
        description=(
            "Ground truth is the moderators' final decision; see the statistics page. Without `model`, the "
            "active model's figures."
        ),
        parameters=[StatisticsFilterSerializer],
        responses=StatisticsSerializer,
    )
    def get(self, request: Request) -> Response:
        filters = StatisticsFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        arguments = {
            "date_from": filters.validated_data.get("date_from"),
            "date_to": filters.validated_data.get("date_to"),
            "model_name": filters.validated_data.get("model"),
            "scenery_by": filters.validated_data["scenery_by"],
        }
        by_scenery = reporting.scenery_statistics(**arguments)
        daily = reporting.daily_statistics(**arguments)
        data = {
            "model_name": by_scenery["model_name"],
            "date_from": arguments["date_from"],
            "date_to": arguments["date_to"],
            "scenery_by": arguments["scenery_by"],
            "overall": by_scenery["overall"],
            "sceneries": by_scenery["rows"],
            "days": daily["days"],
            "live": reporting.live_statistics(**arguments),
        }
        return Response(StatisticsSerializer(data).data)
