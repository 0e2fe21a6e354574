"""Moderators' pages: the queue, decisions, claims, re-queue and re-analysis, appeals to decide."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from common.web import domain_errors
from detection.selectors import model_names_available
from moderation import analysis, selectors, services
from moderation.forms import (
    BulkDecisionForm,
    DecisionForm,
    QueueFilterForm,
)
from moderation.models import Appeal, Decision, State
from moderation.views.submissions import item_page

review_required = permission_required("moderation.review_submission", raise_exception=True)


QUEUE_SHORTCUTS = [
    ("j / k", "Move down / up the list"),
    ("x", "Tick or untick the item"),
    ("Enter or o", "Open the item"),
]


@login_required
@review_required
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None)
    filters = (
        selectors.QueueFilters(**{k: v for k, v in form.cleaned_data.items() if v not in (None, "")})
        if (form.is_bound and form.is_valid())
        else selectors.QueueFilters()
    )
    tab = request.GET.get("tab", "flagged")
    tab = tab if tab in selectors.QUEUE_TABS else "flagged"
    page = selectors.review_queue_page(
        moderator=request.user,
        filters=filters,
        tab=tab,
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
    )
    query = request.GET.copy()
    for cursor in ("after", "before"):
        query.pop(cursor, None)
    return render(
        request,
        "moderation/queue.html",
        {
            "page": page,
            "tab": tab,
            "tab_counts": selectors.queue_tab_counts(moderator=request.user),
            "paged": "after" in request.GET or "before" in request.GET,
            "form": form,
            "query": query.urlencode(),
            "counts": _state_count_rows(),
            "shortcuts": QUEUE_SHORTCUTS,
            "model_names": model_names_available(),
            "approve_reasons": selectors.reasons_for(outcome=Decision.Outcome.APPROVE),
            "reject_reasons": selectors.reasons_for(outcome=Decision.Outcome.REJECT),
        },
    )


def _state_count_rows() -> list[tuple[str, str, int]]:
    counts = selectors.state_counts()
    return [(value, label, counts[value]) for value, label in State.choices]


@login_required
@review_required
def queue_next(request: HttpRequest) -> HttpResponse:
    """Open the first item of the queue nobody else holds (after deciding, or from the keyboard)."""
    after = request.GET.get("after", "")
    next_id = selectors.queue_first(moderator=request.user, exclude_id=int(after) if after.isdigit() else None)
    if next_id is None:
        messages.info(request, "The queue is empty: nothing else is waiting for review.")
        return redirect("queue")
    return redirect("submission_detail", pk=next_id)


@require_POST
@login_required
@review_required
def queue_bulk_decide(request: HttpRequest) -> HttpResponse:
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(_back_to(request, "queue"))
    result = services.submissions_decide_bulk(
        submission_ids=form.cleaned_data["ids"],
        moderator=request.user,
        outcome=form.cleaned_data["outcome"],
        reason_code=form.cleaned_data["reason"].code,
        note=form.cleaned_data["note"],
    )
    verb = Decision.Outcome(form.cleaned_data["outcome"]).label.lower()
    if result.applied:
        messages.success(request, f"{len(result.applied)} {verb}: " + ", ".join(f"#{i}" for i in result.applied))
    for reason in result.refused.values():
        messages.error(request, f"Not applied: {reason}")
    return redirect(_back_to(request, "queue"))


def _back_to(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse(fallback)


def _appealed_item_page(request: HttpRequest, pk: int) -> str:
    return reverse("submission_detail", args=[Appeal.objects.values_list("submission_id", flat=True).get(pk=pk)])


@require_POST
@login_required
@review_required
@domain_errors(back=item_page, prefix="Not applied")
def submission_decide_post(request: HttpRequest, pk: int) -> HttpResponse:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a reason that fits the decision.")
        return redirect("submission_detail", pk=pk)
    decision = services.submission_decide(
        submission_id=pk,
        moderator=request.user,
        outcome=form.cleaned_data["outcome"],
        reason_code=form.cleaned_data["reason"].code,
        note=form.cleaned_data["note"],
    )
    messages.success(request, f"Submission #{pk} {decision.get_outcome_display().lower()}.")
    return redirect(f"{reverse('queue_next')}?after={pk}")


@require_POST
@login_required
@review_required
@domain_errors(back=item_page, prefix="Not re-queued")
def submission_requeue_post(request: HttpRequest, pk: int) -> HttpResponse:
    services.submission_requeue(submission_id=pk, actor=request.user, reason="Re-queued by a moderator.")
    messages.success(request, f"Submission #{pk} is queued for analysis again.")
    return redirect("submission_detail", pk=pk)


@require_POST
@login_required
@review_required
@domain_errors(back=item_page, prefix="Not re-analysed")
def submission_reanalyse_post(request: HttpRequest, pk: int) -> HttpResponse:
    model_name = request.POST.get("model_name", "")
    analysis.reanalysis_request(submission_id=pk, model_name=model_name, actor=request.user)
    messages.success(request, f"Re-analysis with {model_name} queued; its score appears below when done.")
    return redirect("submission_detail", pk=pk)


@require_POST
@login_required
@review_required
def submission_claim_post(request: HttpRequest, pk: int) -> JsonResponse:
    """The open page's heartbeat: renews the moderator's hold on the item."""
    claimed = services.submission_claim(submission_id=pk, moderator=request.user)
    return JsonResponse({"claimed": claimed}, status=200 if claimed else 409)


@require_POST
@login_required
@review_required
def submission_release_post(request: HttpRequest, pk: int) -> HttpResponse:
    services.submission_release(submission_id=pk, moderator=request.user)
    return HttpResponse(status=204)


@login_required
@review_required
def appeal_queue_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.appeal_queue(moderator=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "moderation/appeal_queue.html", {"page": page})


@require_POST
@login_required
@review_required
@domain_errors(back=_appealed_item_page, prefix="Not applied")
def appeal_decide_post(request: HttpRequest, pk: int) -> HttpResponse:
    appeal = get_object_or_404(Appeal, pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a reason that fits the decision.")
        return redirect("submission_detail", pk=appeal.submission_id)
    decision = services.appeal_decide(
        appeal_id=pk,
        moderator=request.user,
        outcome=form.cleaned_data["outcome"],
        reason_code=form.cleaned_data["reason"].code,
        note=form.cleaned_data["note"],
    )
    messages.success(request, f"Appeal on #{appeal.submission_id}: {decision.get_outcome_display().lower()}.")
    return redirect("appeal_queue")
