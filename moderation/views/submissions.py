"""Contributors' pages: upload, their submissions and their status, the item page, appeals."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from common.errors import Invalid
from common.web import domain_errors
from detection import selectors as detection_selectors
from detection.selectors import model_names_available
from moderation import lifecycle, selectors, services
from moderation.forms import AppealForm, declared_ai_parse
from moderation.images import IMAGE_CONTENT_TYPES, UploadRefused
from moderation.lifecycle import Action
from moderation.models import Decision, Scenery, State

review_required = permission_required("moderation.review_submission", raise_exception=True)


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
    try:
        declarations = [declared_ai_parse(v) for v in _per_file(request.POST.getlist("declared_ai"), len(files), "0")]
    except Invalid as exc:
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({exc.field: [str(exc)]}, status=400)
        messages.error(request, str(exc))
        return render(request, "moderation/upload.html", {"sceneries": Scenery.choices}, status=400)
    results = [
        result.as_dict(url=result.submission_id and reverse("submission_detail", args=[result.submission_id]))
        for result in services.submissions_create(
            contributor=request.user,
            files=files,
            sceneries=sceneries,
            declarations=declarations,
        )
    ]
    status = 200 if files and all(r["ok"] for r in results) else 400 if not files else 207
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"results": results}, status=status)
    if not files:
        messages.error(request, "Choose at least one image to upload.")
    return render(request, "moderation/upload.html", {"sceneries": Scenery.choices, "results": results}, status=status)


@require_POST
@login_required
@permission_required("moderation.add_submission", raise_exception=True)
def scenery_suggestion_json(request: HttpRequest) -> JsonResponse:
    """The scenery to pre-select for one image the contributor is about to upload (the page sends a small copy);
    null when no suggestion came in time."""
    image = request.FILES.get("image")
    if image is None:
        return JsonResponse({"image": ["Send one image."]}, status=400)
    try:
        scenery = services.upload_scenery_suggest(stream=image)
    except UploadRefused as exc:
        return JsonResponse({"image": [str(exc)]}, status=400)
    return JsonResponse({"scenery": scenery or None, "label": Scenery(scenery).label if scenery else None})


@login_required
def submission_list_page(request: HttpRequest) -> HttpResponse:
    submissions = selectors.submissions_visible_to(user=request.user)
    if not request.user.has_perm("moderation.view_all_submissions") or request.GET.get("mine"):
        submissions = submissions.filter(contributor=request.user)
    state = request.GET.get("state")
    if state in State.values:
        submissions = submissions.filter(state=state)
    page = Paginator(submissions.order_by("-created_at"), 50).get_page(request.GET.get("page"))
    for submission in page:
        selectors.submission_as_seen_by(submission=submission, user=request.user)
    return render(
        request,
        "moderation/submission_list.html",
        {
            "page": page,
            "states": State.choices,
            "query": f"state={state}" if state in State.values else "",
            "scores_visible": selectors.scores_visible_to(user=request.user),
            "appealable_ids": {s.pk for s in page if selectors.submission_appealable(submission=s, user=request.user)},
        },
    )


@require_GET
@login_required
def submission_statuses_json(request: HttpRequest) -> JsonResponse:
    """What the contributor's list shows per row, for the ids on screen; polled while analysis runs."""
    ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.isdigit()]
    scores_visible = selectors.scores_visible_to(user=request.user)
    rows = {}
    for s in selectors.submission_statuses(user=request.user, ids=ids):
        s = selectors.submission_as_seen_by(submission=s, user=request.user)
        final = s.final_decision
        rows[s.pk] = {
            "state": s.state,
            "state_label": s.get_state_display(),
            **({"ai_probability": s.ai_probability} if scores_visible else {}),
            "outcome": (f"{final.reason.label}: {final.note}" if final.note else final.reason.label) if final else "",
            "failure_reason": s.failure_reason,
            "appeal_url": reverse("submission_appeal", args=[s.pk])
            if selectors.submission_appealable(submission=s, user=request.user)
            else "",
            "in_progress": lifecycle.analysis_pending(s.state),
        }
    return JsonResponse({"submissions": rows})


def _visible_submission(request: HttpRequest, pk: int):
    return get_object_or_404(selectors.submissions_visible_to(user=request.user), pk=pk)


@login_required
def submission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    submission = selectors.submission_as_seen_by(submission=_visible_submission(request, pk), user=request.user)
    can_review = request.user.has_perm("moderation.review_submission")
    context = {
        "submission": submission,
        "final_decision": submission.final_decision,
        "requeueable": lifecycle.can(Action.REQUEUE, submission.state),
        "audit": selectors.audit_trail_as_seen_by(submission_id=submission.pk, user=request.user),
        "can_review": can_review,
        "appealable": selectors.submission_appealable(submission=submission, user=request.user),
    }
    if can_review:
        context.update(_review_context(request, submission))
    return render(request, "moderation/submission_detail.html", context)


DETAIL_SHORTCUTS = [
    ("j", "Next item in the queue"),
    ("k", "Previous item in the queue"),
    ("a", "Approve with the selected reason"),
    ("r", "Reject with the selected reason"),
    ("h", "Show or hide the heatmap"),
]


def _review_context(request: HttpRequest, submission) -> dict:
    """What a moderator sees beside the image: whether they may hold it, heatmaps, every model's score, facts
    and evidence."""
    review_decision = next((d for d in submission.decisions_made if d.stage == Decision.Stage.REVIEW), None)
    # The moderator who rejected an appealed item may look at it, but must not hold it from the others.
    own_appeal = (
        lifecycle.can(Action.APPEAL_DECIDE, submission.state)
        and review_decision is not None
        and review_decision.moderator_id == request.user.pk
    )
    # Reading the page takes nothing: the page's first heartbeat (a POST) claims the item.
    claimable = not own_appeal and selectors.submission_claimable(submission=submission, moderator=request.user)
    viewer = detection_selectors.heatmap_viewer(
        submission_id=submission.pk, detection_id=request.GET.get("detection", ""), layer=request.GET.get("layer", "")
    )
    detections = viewer.detections
    missing_layers = [c.layer for c in viewer.layers if not c.heatmap]
    requested_layer = request.GET.get("layer", "")
    evidence = list(submission.evidence.all())
    exif = selectors.image_exif_get(evidence=evidence)
    context = {
        "claimable": claimable,
        "claim_seconds": int(services.CLAIM_DURATION.total_seconds()),
        "detections": detections,
        "shown_detection": viewer.detection,
        "layers": viewer.layers,
        "layer": viewer.layer,
        "heatmap_method": viewer.method,
        "missing_layers": missing_layers,
        "requested_layer": requested_layer,
        # A layer asked for on this page, else the default one rendering since the item was flagged.
        "waiting_layer": requested_layer
        if request.GET.get("rendering") and requested_layer in missing_layers
        else viewer.pending,
        "shortcuts": DETAIL_SHORTCUTS,
        "evidence": evidence,
        "exif": exif,
        "conflicts": selectors.provenance_conflicts(
            submission=submission, evidence=evidence, detections=detections, exif=exif
        ),
        "history": selectors.contributor_history(submission=submission),
        "models_available": model_names_available(),
        "decidable": claimable and lifecycle.can(Action.DECIDE, submission.state),
        "appeal_decidable": claimable and lifecycle.can(Action.APPEAL_DECIDE, submission.state),
        "own_appeal": own_appeal,
        "review_decision": review_decision,
    }
    if submission.state == State.FLAGGED:
        context["previous_id"], context["next_id"] = selectors.queue_neighbours(
            moderator=request.user, submission=submission
        )
    if context["decidable"] or context["appeal_decidable"]:
        context["approve_reasons"] = selectors.reasons_for(outcome=Decision.Outcome.APPROVE)
        context["reject_reasons"] = selectors.reasons_for(outcome=Decision.Outcome.REJECT)
    return context


@login_required
def submission_original(request: HttpRequest, pk: int) -> FileResponse:
    submission = _visible_submission(request, pk)
    return FileResponse(
        default_storage.open(submission.original.name, "rb"),
        content_type=IMAGE_CONTENT_TYPES[submission.image_format],
    )


def item_page(request: HttpRequest, pk: int) -> str:
    return reverse("submission_detail", args=[pk])


@login_required
@domain_errors(back=item_page)
def submission_appeal(request: HttpRequest, pk: int) -> HttpResponse:
    submission = _visible_submission(request, pk)
    if submission.contributor_id != request.user.pk:
        raise PermissionDenied("Only the contributor who uploaded it can appeal.")
    form = AppealForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.appeal_create(submission_id=pk, contributor=request.user, message=form.cleaned_data["message"])
        messages.success(request, f"Your appeal on #{pk} is with another moderator.")
        return redirect("submission_detail", pk=pk)
    return render(
        request,
        "moderation/appeal_form.html",
        {
            "submission": submission,
            "form": form,
            "final_decision": submission.final_decision,
            "appealable": selectors.submission_appealable(submission=submission, user=request.user),
        },
    )
