from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from detection.models import Heatmap
from moderation import selectors, services
from moderation.forms import DecisionForm
from moderation.images import UploadRefused
from moderation.models import Decision, Scenery, State

IMAGE_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.user.has_perm("moderation.review_submission"):
        return redirect("queue")
    return redirect("submission_list")


def _per_file(values: list[str], count: int, default: str) -> list[str]:
    """One value per file, or one value for all of them (the form without JavaScript sends one)."""
    if len(values) == count:
        return values
    return [values[0] if values else default] * count


@login_required
@permission_required("moderation.add_submission", raise_exception=True)
def upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "moderation/upload.html", {"sceneries": Scenery.choices})
    files = request.FILES.getlist("files")
    sceneries = _per_file(request.POST.getlist("scenery"), len(files), Scenery.OTHER)
    declarations = _per_file(request.POST.getlist("declared_ai"), len(files), "0")
    results = []
    for upload_file, scenery, declared in zip(files, sceneries, declarations, strict=True):
        try:
            submission = services.submission_create(
                contributor=request.user,
                stream=upload_file,
                original_name=upload_file.name,
                scenery=scenery,
                declared_ai=declared in {"1", "on", "true"},
            )
        except UploadRefused as exc:
            results.append({"name": upload_file.name, "ok": False, "error": str(exc)})
        else:
            url = reverse("submission_detail", args=[submission.pk])
            results.append({"name": upload_file.name, "ok": True, "id": submission.pk, "url": url})
    status = 200 if files and all(r["ok"] for r in results) else 400 if not files else 207
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"results": results}, status=status)
    if not files:
        messages.error(request, "Choose at least one image to upload.")
    return render(request, "moderation/upload.html", {"sceneries": Scenery.choices, "results": results}, status=status)


@login_required
def submission_list(request: HttpRequest) -> HttpResponse:
    submissions = selectors.submissions_visible_to(user=request.user)
    if not request.user.has_perm("moderation.view_all_submissions") or request.GET.get("mine"):
        submissions = submissions.filter(contributor=request.user)
    state = request.GET.get("state")
    if state in State.values:
        submissions = submissions.filter(state=state)
    page = Paginator(submissions.order_by("-created_at"), 50).get_page(request.GET.get("page"))
    return render(request, "moderation/submission_list.html", {"page": page, "states": State.choices})


def _visible_submission(request: HttpRequest, pk: int):
    return get_object_or_404(selectors.submissions_visible_to(user=request.user), pk=pk)


@login_required
def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    submission = _visible_submission(request, pk)
    can_review = request.user.has_perm("moderation.review_submission")
    context = {
        "submission": submission,
        "detections": submission.detections.prefetch_related("heatmaps"),
        "evidence": submission.evidence.all(),
        "audit": selectors.audit_trail(submission=submission),
        "can_review": can_review,
        "decidable": can_review and submission.state in {State.FLAGGED, State.CLEARED},
    }
    if context["decidable"]:
        context["approve_reasons"] = selectors.reasons_for(outcome=Decision.Outcome.APPROVE)
        context["reject_reasons"] = selectors.reasons_for(outcome=Decision.Outcome.REJECT)
    return render(request, "moderation/submission_detail.html", context)


@login_required
def submission_original(request: HttpRequest, pk: int) -> FileResponse:
    submission = _visible_submission(request, pk)
    return FileResponse(
        default_storage.open(submission.original.name, "rb"),
        content_type=IMAGE_CONTENT_TYPES[submission.image_format],
    )


@login_required
@permission_required("moderation.review_submission", raise_exception=True)
def heatmap_image(request: HttpRequest, pk: int) -> FileResponse:
    heatmap = get_object_or_404(Heatmap, pk=pk)
    return FileResponse(default_storage.open(heatmap.image.name, "rb"), content_type="image/png")


@login_required
@permission_required("moderation.review_submission", raise_exception=True)
def queue(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.review_queue(), 50).get_page(request.GET.get("page"))
    return render(request, "moderation/queue.html", {"page": page})


@require_POST
@login_required
@permission_required("moderation.review_submission", raise_exception=True)
def submission_decide(request: HttpRequest, pk: int) -> HttpResponse:
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a reason that fits the decision.")
        return redirect("submission_detail", pk=pk)
    try:
        decision = services.submission_decide(
            submission_id=pk,
            moderator=request.user,
            outcome=form.cleaned_data["outcome"],
            reason_code=form.cleaned_data["reason"].code,
            note=form.cleaned_data["note"],
        )
    except services.TransitionRefused as exc:
        messages.error(request, f"Not applied: {exc}")
        return redirect("submission_detail", pk=pk)
    messages.success(request, f"Submission #{pk} {decision.get_outcome_display().lower()}.")
    return redirect("queue")


@require_POST
@login_required
@permission_required("moderation.review_submission", raise_exception=True)
def submission_requeue(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.submission_requeue(submission_id=pk, actor=request.user, reason="Re-queued by a moderator.")
    except services.TransitionRefused as exc:
        messages.error(request, f"Not re-queued: {exc}")
    else:
        messages.success(request, f"Submission #{pk} is queued for analysis again.")
    return redirect("submission_detail", pk=pk)
