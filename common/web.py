"""The pages' one mapping of the domain's errors (common.errors), as a view decorator.

A page's form POST answers with a redirect back to the page it came from, so a refusal is shown there as
a message (the post/redirect/get pattern keeps the browser's back button and reload harmless); the
status it stands for (400, 403, 409) is the API's business. A missing row is a 404 page.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
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
