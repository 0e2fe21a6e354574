"""Roles are Django groups; each endpoint asks for the permission the matching web page asks for."""

from rest_framework.permissions import BasePermission


class _HasPermission(BasePermission):
    permission = ""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm(self.permission))


class CanUpload(_HasPermission):
    permission = "moderation.add_submission"


class CanReview(_HasPermission):
    permission = "moderation.review_submission"


class CanViewStatistics(_HasPermission):
    permission = "moderation.view_statistics"


class CanManageWebhooks(BasePermission):
    """Webhooks are an admin tool; each method needs the matching Django model permission."""

    permissions = {
        "GET": "webhooks.view_webhook",
        "HEAD": "webhooks.view_webhook",
        "OPTIONS": "webhooks.view_webhook",
        "POST": "webhooks.add_webhook",
        "DELETE": "webhooks.delete_webhook",
    }

    def has_permission(self, request, view) -> bool:
        permission = self.permissions.get(request.method)
        return bool(permission and request.user and request.user.has_perm(permission))
