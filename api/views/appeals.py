"""Appeals: the contributor's one appeal, the moderators' queue and decision."""

from functools import partial

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import selectors as api_selectors
from api.permissions import CanReview, CanUpload
from api.responses import CONFLICT, NOT_FOUND
from api.serializers.appeals import AppealInputSerializer, AppealSerializer
from api.serializers.common import MessageSerializer
from api.serializers.submissions import DecisionInputSerializer, DecisionSerializer
from api.views.submissions import decision_apply
from moderation import selectors, services


class SubmissionAppealView(APIView):
    permission_classes = [IsAuthenticated, CanUpload]

    @extend_schema(
        summary="Appeal a rejection of your own submission, once",
        request=AppealInputSerializer,
        responses={
            201: AppealSerializer,
            403: OpenApiResponse(MessageSerializer, description="Not yours, or already appealed."),
            404: NOT_FOUND,
            409: OpenApiResponse(MessageSerializer, description="The submission is not rejected."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        api_selectors.submission_visible_get(user=request.user, submission_id=pk)
        data = AppealInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = services.appeal_create(
            submission_id=pk, contributor=request.user, message=data.validated_data["message"]
        )
        return Response(AppealSerializer(appeal).data, status=status.HTTP_201_CREATED)


class AppealListView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanReview]
    serializer_class = AppealSerializer

    @extend_schema(summary="Pending appeals, oldest first (moderators)", responses=AppealSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.appeal_queue(moderator=request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AppealDecisionView(APIView):
    permission_classes = [IsAuthenticated, CanReview]

    @extend_schema(
        summary="Decide an appeal, final either way (moderators)",
        description="The moderator who made the original decision may not decide the appeal.",
        request=DecisionInputSerializer,
        responses={
            201: DecisionSerializer,
            400: OpenApiResponse(description="The reason does not fit the outcome."),
            403: OpenApiResponse(MessageSerializer, description="You made the original decision."),
            404: OpenApiResponse(MessageSerializer, description="No such appeal."),
            409: CONFLICT,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        return decision_apply(request, partial(services.appeal_decide, appeal_id=pk))
