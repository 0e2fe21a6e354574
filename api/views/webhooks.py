"""Webhook subscriptions (admins)."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from api.permissions import CanManageWebhooks
from api.serializers.webhooks import WebhookCreatedSerializer, WebhookInputSerializer, WebhookSerializer
from webhooks import services as webhook_services
from webhooks.selectors import webhooks_of


class WebhookListCreateView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanManageWebhooks]
    serializer_class = WebhookSerializer

    def get_queryset(self):
        return webhooks_of(owner=self.request.user)

    @extend_schema(summary="Your webhooks (admins)", responses=WebhookSerializer(many=True))
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Register a webhook (admins)",
        description="The response holds the signing secret; it is not shown again.",
        request=WebhookInputSerializer,
        responses={201: WebhookCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        data = WebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = webhook_services.webhook_create(owner=request.user, **data.validated_data)
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(GenericAPIView):
    permission_classes = [IsAuthenticated, CanManageWebhooks]
    serializer_class = WebhookSerializer

    def get_queryset(self):
        return webhooks_of(owner=self.request.user)

    @extend_schema(summary="One of your webhooks (admins)")
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(summary="Delete one of your webhooks (admins)", responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        webhook_services.webhook_delete(webhook=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
