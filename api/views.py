"""Thin views: parse input, call the same services and selectors as the web pages, shape the output."""

from collections.abc import Callable
from functools import partial
from importlib.resources import files

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import selectors as api_selectors
from api import serializers
from api.parsers import UploadParser
from api.permissions import CanManageWebhooks, CanReview, CanUpload, CanViewStatistics
from api.throttles import UploadRateThrottle
from detection.models import Heatmap
from moderation import analysis, selectors, services, statistics
from moderation.models import Appeal, Decision, Submission
from moderation.views import IMAGE_CONTENT_TYPES
from webhooks import services as webhook_services
from webhooks.selectors import webhooks_of

REDOC_BUNDLE = files("drf_spectacular_sidecar") / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
# Redoc renders with inline styles and scripts and a blob worker; the page holds public documentation only.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
)
NOT_FOUND = OpenApiResponse(serializers.MessageSerializer, description="No such submission visible to you.")
CONFLICT = OpenApiResponse(serializers.MessageSerializer, description="Someone or something got there first.")


class _AnyAccept(BaseContentNegotiation):
    """Image endpoints answer with the image whatever Accept says (browsers send image/*, clients */*)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _visible_submission(request: Request, pk: int) -> Submission:
    return get_object_or_404(selectors.submissions_visible_to(user=request.user), pk=pk)


# --- Submissions ----------------------------------------------------------------------


class SubmissionListCreateView(GenericAPIView):
    serializer_class = serializers.SubmissionSerializer
    parser_classes = [UploadParser]

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), CanUpload()]
        return [IsAuthenticated()]

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(UploadRateThrottle())
        return throttles

    @extend_schema(
        summary="List submissions you may see",
        description="Contributors see their own submissions; moderators and admins see everyone's.",
        parameters=[serializers.SubmissionFilterSerializer],
        responses=serializers.SubmissionSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = serializers.SubmissionFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        submissions = api_selectors.submission_list(
            user=request.user,
            filters=filters.queue_filters(),
            state=filters.validated_data.get("state", ""),
            ordering=filters.validated_data["ordering"],
        )
        page = self.paginate_queryset(submissions)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Upload one or many photographs",
        description=(
            "Each file is validated by its content exactly like the upload page. 201 when every file was "
            "accepted, 207 with a per-file error message otherwise."
        ),
        request={"multipart/form-data": serializers.SubmissionCreateInputSerializer},
        responses={201: serializers.UploadResultsSerializer, 207: serializers.UploadResultsSerializer},
    )
    def post(self, request: Request) -> Response:
        upload = serializers.SubmissionCreateInputSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        data = upload.validated_data
        results = [
            result.as_dict(
                url=result.submission_id
                and request.build_absolute_uri(reverse("api:submission-detail", args=[result.submission_id]))
            )
            for result in services.submissions_create(
                contributor=request.user,
                files=data["files"],
                sceneries=data["scenery"],
                declarations=data["declared_ai"],
            )
        ]
        all_ok = all(result["ok"] for result in results)
        return Response(
            {"results": results}, status=status.HTTP_201_CREATED if all_ok else status.HTTP_207_MULTI_STATUS
        )


class SubmissionDetailView(APIView):
    @extend_schema(
        summary="A submission with its detections, evidence, decision and audit trail",
        responses={200: serializers.SubmissionDetailSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        try:
            submission = api_selectors.submission_detail_get(user=request.user, submission_id=pk)
        except Submission.DoesNotExist as exc:
            raise Http404 from exc
        return Response(serializers.SubmissionDetailSerializer(submission, context={"request": request}).data)


class SubmissionOriginalView(APIView):
    content_negotiation_class = _AnyAccept

    @extend_schema(
        summary="The original file, byte for byte",
        responses={(200, "image/*"): OpenApiTypes.BINARY, 404: NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        submission = _visible_submission(request, pk)
        return FileResponse(
            default_storage.open(submission.original.name, "rb"),
            content_type=IMAGE_CONTENT_TYPES[submission.image_format],
        )


class HeatmapImageView(APIView):
    permission_classes = [IsAuthenticated, CanReview]
    content_negotiation_class = _AnyAccept

    @extend_schema(
        summary="A Grad-CAM heatmap (moderators)",
        responses={(200, "image/png"): OpenApiTypes.BINARY, 404: OpenApiResponse(serializers.MessageSerializer)},
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        heatmap = get_object_or_404(Heatmap, pk=pk)
        return FileResponse(default_storage.open(heatmap.image.name, "rb"), content_type="image/png")


class QueueView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanReview]
    serializer_class = serializers.SubmissionSerializer

    @extend_schema(
        summary="Flagged submissions, most likely AI first (moderators)",
        description="Items another moderator has open are left out, as in the web queue.",
        parameters=[serializers.QueueFilterSerializer],
        responses=serializers.SubmissionSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = serializers.QueueFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(selectors.review_queue(moderator=request.user, filters=filters.queue_filters()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def _decision_apply(request: Request, decide: Callable[..., Decision]) -> Response:
    """Review and appeal decisions answer alike: 201, 400 for a reason that does not fit, 409 when too late."""
    data = serializers.DecisionInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        decision = decide(
            moderator=request.user,
            outcome=data.validated_data["outcome"],
            reason_code=data.validated_data["reason"],
            note=data.validated_data["note"],
        )
    except services.TransitionRefused as exc:
        return Response({"detail": f"Not applied: {exc}"}, status=status.HTTP_409_CONFLICT)
    except ValueError as exc:
        raise ValidationError({"reason": [str(exc)]}) from exc
    return Response(
        serializers.DecisionSerializer(decision, context={"request": request}).data, status=status.HTTP_201_CREATED
    )


class SubmissionDecisionView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Approve or reject a submission (moderators)",
        request=serializers.DecisionInputSerializer,
        responses={
            201: serializers.DecisionSerializer,
            400: OpenApiResponse(description="The reason does not fit the outcome."),
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            return _decision_apply(request, partial(services.submission_decide, submission_id=pk))
        except Submission.DoesNotExist as exc:
            raise Http404 from exc


class SubmissionRequeueView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Send a failed submission back to analysis (moderators)",
        request=None,
        responses={202: serializers.SubmissionSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            submission = services.submission_requeue(
                submission_id=pk, actor=request.user, reason="Re-queued by a moderator."
            )
        except Submission.DoesNotExist as exc:
            raise Http404 from exc
        except services.TransitionRefused as exc:
            return Response({"detail": f"Not re-queued: {exc}"}, status=status.HTTP_409_CONFLICT)
        data = serializers.SubmissionSerializer(submission, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class SubmissionReanalyseView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Ask another model for a second opinion (moderators)",
        description="The submission keeps its state and queue position; the new detection appears when done.",
        request=serializers.ReanalysisInputSerializer,
        responses={
            202: serializers.MessageSerializer,
            400: OpenApiResponse(description="Unknown model."),
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        data = serializers.ReanalysisInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model_name = data.validated_data["model"]
        try:
            analysis.reanalysis_request(submission_id=pk, model_name=model_name, actor=request.user)
        except Submission.DoesNotExist as exc:
            raise Http404 from exc
        except ValueError as exc:
            raise ValidationError({"model": [str(exc)]}) from exc
        return Response({"detail": f"Re-analysis with {model_name} queued."}, status=status.HTTP_202_ACCEPTED)


# --- Appeals --------------------------------------------------------------------------


class SubmissionAppealView(APIView):
    permission_classes = [IsAuthenticated, CanUpload]

    @extend_schema(
        summary="Appeal a rejection of your own submission, once",
        request=serializers.AppealInputSerializer,
        responses={
            201: serializers.AppealSerializer,
            403: OpenApiResponse(serializers.MessageSerializer, description="Not yours, or already appealed."),
            404: NOT_FOUND,
            409: OpenApiResponse(serializers.MessageSerializer, description="The submission is not rejected."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        _visible_submission(request, pk)
        data = serializers.AppealInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            appeal = services.appeal_create(
                submission_id=pk, contributor=request.user, message=data.validated_data["message"]
            )
        except services.AppealRefused as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.TransitionRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(serializers.AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)


class AppealListView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanReview]
    serializer_class = serializers.AppealSerializer

    @extend_schema(
        summary="Pending appeals, oldest first (moderators)", responses=serializers.AppealSerializer(many=True)
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.appeal_queue(moderator=request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AppealDecisionView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Decide an appeal, final either way (moderators)",
        description="The moderator who made the original decision may not decide the appeal.",
        request=serializers.DecisionInputSerializer,
        responses={
            201: serializers.DecisionSerializer,
            400: OpenApiResponse(description="The reason does not fit the outcome."),
            403: OpenApiResponse(serializers.MessageSerializer, description="You made the original decision."),
            404: OpenApiResponse(serializers.MessageSerializer, description="No such appeal."),
            409: CONFLICT,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        try:
            return _decision_apply(request, partial(services.appeal_decide, appeal_id=pk))
        except Appeal.DoesNotExist as exc:
            raise Http404 from exc
        except services.AppealRefused as exc:
            raise PermissionDenied(str(exc)) from exc


# --- Statistics -----------------------------------------------------------------------


class StatisticsView(APIView):
    permission_classes = [IsAuthenticated, CanViewStatistics]

    @extend_schema(
        summary="Flag rate, precision, recall and latency per scenery and per day (admins)",
        description=(
            "Ground truth is the moderators' final decision; see the statistics page. Without `model`, the "
            "active model's figures."
        ),
        parameters=[serializers.StatisticsFilterSerializer],
        responses=serializers.StatisticsSerializer,
    )
    def get(self, request: Request) -> Response:
        filters = serializers.StatisticsFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        arguments = {
            "date_from": filters.validated_data.get("date_from"),
            "date_to": filters.validated_data.get("date_to"),
            "model_name": filters.validated_data.get("model"),
        }
        by_scenery = statistics.scenery_statistics(**arguments)
        daily = statistics.daily_statistics(**arguments)
        data = {
            "model_name": by_scenery["model_name"],
            "date_from": arguments["date_from"],
            "date_to": arguments["date_to"],
            "overall": by_scenery["overall"],
            "sceneries": by_scenery["rows"],
            "days": daily["days"],
        }
        return Response(serializers.StatisticsSerializer(data).data)


# --- Webhooks -------------------------------------------------------------------------


class WebhookListCreateView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanManageWebhooks]
    serializer_class = serializers.WebhookSerializer

    def get_queryset(self):
        return webhooks_of(owner=self.request.user)

    @extend_schema(summary="Your webhooks (admins)", responses=serializers.WebhookSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Register a webhook (admins)",
        description="The response holds the signing secret; it is not shown again.",
        request=serializers.WebhookInputSerializer,
        responses={201: serializers.WebhookCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        data = serializers.WebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            webhook = webhook_services.webhook_create(owner=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc
        return Response(serializers.WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanManageWebhooks]
    serializer_class = serializers.WebhookSerializer

    def get_queryset(self):
        return webhooks_of(owner=self.request.user)

    @extend_schema(summary="One of your webhooks (admins)")
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(summary="Delete one of your webhooks (admins)", responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        webhook_services.webhook_delete(webhook=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Documentation --------------------------------------------------------------------


class DocsView(SpectacularRedocView):
    """Redoc with its script served by this app from drf-spectacular-sidecar: no CDN, no web fonts."""

    template_name = "api/redoc.html"

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("api:redoc-bundle")

    @extend_schema(exclude=True)
    def get(self, request: Request, *args, **kwargs) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response


class RedocBundleView(APIView):
    permission_classes = [AllowAny]
    content_negotiation_class = _AnyAccept

    @extend_schema(exclude=True)
    def get(self, request: Request) -> FileResponse:
        response = FileResponse(REDOC_BUNDLE.open("rb"), content_type="text/javascript")
        response["Cache-Control"] = "public, max-age=86400"
        return response
