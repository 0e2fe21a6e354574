"""Answers for requests that fail before any view runs: the body could not be parsed."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render


def request_refusal(exc: BaseException | None) -> str:
    """What the sender of an unreadable request can do about it, in the words of the upload page."""
    if isinstance(exc, TooManyFilesSent):
        return f"At most {settings.UPLOAD_MAX_FILES} files can be uploaded in one request; send the rest in another."
    if isinstance(exc, RequestDataTooBig):
        return "The request is too large: upload the files in smaller batches."
    # Django reads each part's headers within 1 KB, so only an absurdly long file name overflows them.
    if isinstance(exc, MultiPartParserError) and "header size" in str(exc):
        return "A file name is too long: rename the file (at most 255 characters) and upload it again."
    return "The request could not be read; nothing was uploaded."


def bad_request(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    message = request_refusal(exception)
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": message}, status=400)
    return render(request, "400.html", {"message": message}, status=400)
