"""Answers for requests that fail before any view runs: the body could not be parsed."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from common.web import request_refusal


def bad_request(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    message = request_refusal(exception)
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": message}, status=400)
    return render(request, "400.html", {"message": message}, status=400)
