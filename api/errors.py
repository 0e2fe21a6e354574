"""The API's one mapping from the domain's errors to HTTP (settings REST_FRAMEWORK["EXCEPTION_HANDLER"])."""

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import DomainError


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DomainError by its status (its field, when it names one, keys the message like a serializer's);
    a missing row is a 404; a model's validation error a 400; DRF's own exceptions as DRF answers them.
    Anything else stays a 500."""
    if isinstance(exc, DomainError):
        body = {exc.field: [str(exc)]} if exc.field else {"detail": str(exc)}
        return Response(body, status=exc.status)
    if isinstance(exc, ObjectDoesNotExist):
        exc = Http404()
    elif isinstance(exc, DjangoValidationError):
        exc = ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return drf_exception_handler(exc, context)
