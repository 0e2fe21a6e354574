"""Submissions: upload, list, detail, original, the review queue and moderators' actions on one."""

from collections.abc import Callable
from functools import partial

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from api import selectors as api_selectors
from api.negotiation import AnyAccept
from api.parsers import UploadParser
from api.permissions import CanReview, CanUpload
from api.responses import CONFLICT, NOT_FOUND
from api.serializers.common import MessageSerializer
from api.serializers.submissions import (
    DecisionInputSerializer,
    DecisionSerializer,
    QueuePageSerializer,
    QueueQuerySerializer,
    ReanalysisInputSerializer,
    SubmissionCreateInputSerializer,
    SubmissionDetailSerializer,
    SubmissionFilterSerializer,
    SubmissionSerializer,
    UploadResultsSerializer,
    submission_detail_serializer_for,
    submission_serializer_for,
)
from api.throttles import UploadRateThrottle
from moderation import analysis, selectors, services
from moderation.images import IMAGE_CONTENT_TYPES
from moderation.models import Decision


class SubmissionListCreateView(GenericAPIView):
    serializer_class = SubmissionSerializer
    parser_classes = [UploadParser]

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), CanUpload()]
        return [IsAuthenticated()]

    def get_serializer_class(self):
        # The schema documents the reviewers' shape; contributors get it without the scores.
        if getattr(self, "swagger_fake_view", False):
            return SubmissionSerializer
        return submission_serializer_for(user=self.request.user)

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(UploadRateThrottle())
        return throttles

    @extend_schema(
        summary="List submissions you may see",
        description=(
            "Contributors see their own submissions, without scores or verdicts, and may not filter or order by "
            "them (400); moderators and admins see everyone's."
        ),
        parameters=[SubmissionFilterSerializer],
        responses=SubmissionSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters = SubmissionFilterSerializer(
            data=request.query_params, context={"scores_visible": selectors.scores_visible_to(user=request.user)}
        )
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
        request={"multipart/form-data": SubmissionCreateInputSerializer},
        responses={201: UploadResultsSerializer, 207: UploadResultsSerializer},
    )
    def post(self, request: Request) -> Response:
        upload = SubmissionCreateInputSerializer(data=request.data)
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
        responses={200: SubmissionDetailSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        submission = api_selectors.submission_detail_get(user=request.user, submission_id=pk)
        serializer = submission_detail_serializer_for(user=request.user)
        return Response(serializer(submission, context={"request": request}).data)


class SubmissionOriginalView(APIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        summary="The original file, byte for byte",
        responses={(200, "image/*"): OpenApiTypes.BINARY, 404: NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        submission = api_selectors.submission_visible_get(user=request.user, submission_id=pk)
        return FileResponse(
            default_storage.open(submission.original.name, "rb"),
            content_type=IMAGE_CONTENT_TYPES[submission.image_format],
        )


class QueueView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanReview]
    serializer_class = SubmissionSerializer
    pagination_class = None  # keyset pages, by position (moderation.selectors.review_queue_page)

    @extend_schema(
        operation_id="queue_list",
        summary="Flagged submissions (or spot checks), most likely AI first (moderators)",
        description="Items another moderator has open are left out, as in the web queue. Pages go by position "
        "(keyset): follow `next` and `previous`, so items decided or arriving meanwhile never repeat or skip one.",
        parameters=[QueueQuerySerializer],
        responses=QueuePageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = QueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = selectors.review_queue_page(
            moderator=request.user,
            filters=query.queue_filters(),
            tab=query.validated_data["tab"],
            after=query.validated_data.get("after", ""),
            before=query.validated_data.get("before", ""),
            size=api_settings.PAGE_SIZE,
        )
        url = remove_query_param(remove_query_param(request.build_absolute_uri(), "after"), "before")
        return Response(
            {
                "count": page.count,
                "next": page.next_cursor and replace_query_param(url, "after", page.next_cursor),
                "previous": page.previous_cursor and replace_query_param(url, "before", page.previous_cursor),
                "results": self.get_serializer(page, many=True).data,
            }
        )


def decision_apply(request: Request, decide: Callable[..., Decision]) -> Response:
    """Review and appeal decisions answer alike: 201, 400 for a reason that does not fit, 409 when too late."""
    data = DecisionInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    decision = decide(
        moderator=request.user,
        outcome=data.validated_data["outcome"],
        reason_code=data.validated_data["reason"],
        note=data.validated_data["note"],
    )
    return Response(DecisionSerializer(decision, context={"request": request}).data, status=status.HTTP_201_CREATED)


class SubmissionDecisionView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Approve or reject a submission (moderators)",
        request=DecisionInputSerializer,
        responses={
            201: DecisionSerializer,
            400: OpenApiResponse(description="The reason does not fit the outcome."),
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        return decision_apply(request, partial(services.submission_decide, submission_id=pk))


class SubmissionRequeueView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Send a failed submission back to analysis (moderators)",
        request=None,
        responses={202: SubmissionSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    def post(self, request: Request, pk: int) -> Response:
        submission = services.submission_requeue(
            submission_id=pk, actor=request.user, reason="Re-queued by a moderator."
        )
        data = SubmissionSerializer(submission, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)


class SubmissionReanalyseView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Ask another model for a second opinion (moderators)",
        description="The submission keeps its state and queue position; the new detection appears when done.",
        request=ReanalysisInputSerializer,
        responses={
            202: MessageSerializer,
            400: OpenApiResponse(description="Unknown model."),
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        data = ReanalysisInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model_name = data.validated_data["model"]
        analysis.reanalysis_request(submission_id=pk, model_name=model_name, actor=request.user)
        return Response({"detail": f"Re-analysis with {model_name} queued."}, status=status.HTTP_202_ACCEPTED)
