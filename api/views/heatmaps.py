"""Grad-CAM heatmap images (moderators)."""

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from api.negotiation import AnyAccept
from api.permissions import CanReview
from api.serializers.common import MessageSerializer
from detection.models import Heatmap


class HeatmapImageView(APIView):
    permission_classes = [IsAuthenticated, CanReview]
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="A Grad-CAM heatmap (moderators)",
        responses={(200, "image/png"): OpenApiTypes.BINARY, 404: OpenApiResponse(MessageSerializer)},
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        heatmap = get_object_or_404(Heatmap, pk=pk)
        return FileResponse(default_storage.open(heatmap.image.name, "rb"), content_type="image/png")
