"""The pages' one mapping of the domain's errors (common.errors), as a view decorator.

A page's form POST answers with a redirect back to the page it came from, so a refusal is shown there as
a message (the post/redirect/get pattern keeps the browser's back button and reload harmless); the
status it stands for (400, 403, 409) is the API's business. A missing row is a 404 page.
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect

from common.errors import DomainError, NotFound


def domain_errors(*, back: Callable[..., str], prefix: str = "") -> Callable:
    """Map DomainError to a message on the page `back(request, **view_kwargs)` names, `prefix` first;
    NotFound and ObjectDoesNotExist to a 404."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except (ObjectDoesNotExist, NotFound) as exc:
                raise Http404(str(exc)) from exc
            except DomainError as exc:
                messages.error(request, f"{prefix}: {exc}" if prefix else str(exc))
                return redirect(back(request, *args, **kwargs))

        return wrapped

    return decorator


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
