"""The audit log page."""

from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit import selectors as audit_selectors
from moderation.forms import (
    AuditFilterForm,
)

review_required = permission_required("moderation.review_submission", raise_exception=True)


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def audit_log_page(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None, actions=audit_selectors.audit_actions())
    filters = (
        audit_selectors.AuditFilters(**{k: v for k, v in form.cleaned_data.items() if v not in (None, "")})
        if form.is_bound and form.is_valid()
        else audit_selectors.AuditFilters()
    )
    page = Paginator(audit_selectors.audit_log(filters=filters), 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "moderation/audit_log.html", {"page": page, "form": form, "query": query.urlencode()})
