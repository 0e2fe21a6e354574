import csv
import json
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from audit import selectors as audit_selectors
from detection import selectors as detection_selectors
from detection import services as detection_services
from detection import services_settings
from detection.models import Detection, Heatmap, ModelSetting
from detection.selectors import model_active_name, model_card_get, model_names_available
from moderation import analysis, lifecycle, selectors, services, statistics
from moderation.forms import (
    AppealForm,
    AuditFilterForm,
    BulkDecisionForm,
    DecisionForm,
    ModelActivateForm,
    QueueFilterForm,
    StatisticsFilterForm,
    ThresholdsForm,
)
from moderation.lifecycle import Action
from moderation.models import Appeal, Decision, Scenery, State

IMAGE_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
review_required = permission_required("moderation.review_submission", raise_exception=True)
DETAIL_SHORTCUTS = [
    ("j", "Next item in the queue"),
    ("k", "Previous item in the queue"),
    ("a", "Approve with the selected reason"),
    ("r", "Reject with the selected reason"),
    ("h", "Show or hide the heatmap"),
]
QUEUE_SHORTCUTS = [
    ("j / k", "Move down / up the list"),
    ("x", "Tick or untick the item"),
    ("Enter or o", "Open the item"),
]


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
    results = [
        result.as_dict(url=result.submission_id and reverse("submission_detail", args=[result.submission_id]))
        for result in services.submissions_create(
            contributor=request.user,
            files=files,
            sceneries=sceneries,
            declarations=[declared in {"1", "on", "true"} for declared in declarations],
        )
    ]
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
    return render(
        request,
        "moderation/submission_list.html",
        {
            "page": page,
            "states": State.choices,
            "query": f"state={state}" if state in State.values else "",
            "appealable_ids": {s.pk for s in page if selectors.submission_appealable(submission=s, user=request.user)},
        },
    )


@require_GET
@login_required
def submission_statuses(request: HttpRequest) -> JsonResponse:
    """What the contributor's list shows per row, for the ids on screen; polled while analysis runs."""
    ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.isdigit()]
    rows = {}
    for s in selectors.submission_statuses(user=request.user, ids=ids):
        final = s.final_decision
        rows[s.pk] = {
            "state": s.state,
            "state_label": s.get_state_display(),
            "ai_probability": s.ai_probability,
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
    submission = _visible_submission(request, pk)
    can_review = request.user.has_perm("moderation.review_submission")
    context = {
        "submission": submission,
        "final_decision": submission.final_decision,
        "requeueable": lifecycle.can(Action.REQUEUE, submission.state),
        "audit": audit_selectors.audit_trail(submission_id=submission.pk),
        "can_review": can_review,
        "appealable": selectors.submission_appealable(submission=submission, user=request.user),
    }
    if can_review:
        context.update(_review_context(request, submission))
    return render(request, "moderation/submission_detail.html", context)


def _review_context(request: HttpRequest, submission) -> dict:
    """What a moderator sees beside the image: claim, heatmaps, every model's score, facts and evidence."""
    review_decision = next((d for d in submission.decisions_made if d.stage == Decision.Stage.REVIEW), None)
    # The moderator who rejected an appealed item may look at it, but must not hold it from the others.
    own_appeal = (
        lifecycle.can(Action.APPEAL_DECIDE, submission.state)
        and review_decision is not None
        and review_decision.moderator_id == request.user.pk
    )
    claimed = (
        lifecycle.can(Action.CLAIM, submission.state)
        and not own_appeal
        and services.submission_claim(submission_id=submission.pk, moderator=request.user)
    )
    if not claimed:
        submission.refresh_from_db(fields=["claimed_by", "claimed_until"])
    viewer = detection_selectors.heatmap_viewer(
        submission_id=submission.pk, detection_id=request.GET.get("detection", ""), layer=request.GET.get("layer", "")
    )
    detections = viewer.detections
    evidence = list(submission.evidence.all())
    exif = selectors.image_exif_get(submission=submission)
    context = {
        "claimed": claimed,
        "claim_seconds": int(services.CLAIM_DURATION.total_seconds()),
        "detections": detections,
        "shown_detection": viewer.detection,
        "layers": viewer.layers,
        "layer": viewer.layer,
        "missing_layers": [c.layer for c in viewer.layers if not c.heatmap],
        "requested_layer": request.GET.get("layer", ""),
        "rendering": bool(request.GET.get("rendering")),
        "shortcuts": DETAIL_SHORTCUTS,
        "evidence": evidence,
        "exif": exif,
        "conflicts": selectors.provenance_conflicts(
            submission=submission, evidence=evidence, detections=detections, exif=exif
        ),
        "history": selectors.contributor_history(submission=submission),
        "models_available": model_names_available(),
        "decidable": claimed and lifecycle.can(Action.DECIDE, submission.state),
        "appeal_decidable": claimed and lifecycle.can(Action.APPEAL_DECIDE, submission.state),
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


@login_required
@review_required
def heatmap_image(request: HttpRequest, pk: int) -> FileResponse:
    heatmap = get_object_or_404(Heatmap, pk=pk)
    return FileResponse(default_storage.open(heatmap.image.name, "rb"), content_type="image/png")


@require_POST
@login_required
@review_required
def heatmap_request(request: HttpRequest, pk: int) -> HttpResponse:
    detection = get_object_or_404(Detection, pk=pk)
    layer = request.POST.get("layer", "")
    shown = {"detection": detection.pk, "layer": layer}
    if layer not in {c.layer for c in detection_selectors.heatmap_layers(detection=detection)}:
        messages.error(request, f"{layer or 'That layer'} is not a Grad-CAM layer of {detection.model_name}.")
    else:
        detection_services.heatmap_request(detection_id=detection.pk, layer=layer)
        messages.info(request, f"Rendering the {layer} heatmap; it appears here when ready.")
        shown["rendering"] = 1
    return redirect(f"{reverse('submission_detail', args=[detection.submission_id])}?{urlencode(shown)}")


@login_required
@review_required
def heatmap_layers_rendered(request: HttpRequest, pk: int) -> JsonResponse:
    """Polled by the item page while a requested layer renders, so it can show it without a manual reload."""
    detection = get_object_or_404(Detection.objects.prefetch_related("heatmaps"), pk=pk)
    return JsonResponse(
        {"rendered": [c.layer for c in detection_selectors.heatmap_layers(detection=detection) if c.heatmap]}
    )


@require_POST
@login_required
@review_required
def submission_reanalyse(request: HttpRequest, pk: int) -> HttpResponse:
    model_name = request.POST.get("model_name", "")
    try:
        analysis.reanalysis_request(submission_id=pk, model_name=model_name, actor=request.user)
    except ValueError as exc:
        messages.error(request, f"Not re-analysed: {exc}.")
    else:
        messages.success(request, f"Re-analysis with {model_name} queued; its score appears below when done.")
    return redirect("submission_detail", pk=pk)


@require_POST
@login_required
@review_required
def submission_claim(request: HttpRequest, pk: int) -> JsonResponse:
    """The open page's heartbeat: renews the moderator's hold on the item."""
    claimed = services.submission_claim(submission_id=pk, moderator=request.user)
    return JsonResponse({"claimed": claimed}, status=200 if claimed else 409)


@require_POST
@login_required
@review_required
def submission_release(request: HttpRequest, pk: int) -> HttpResponse:
    services.submission_release(submission_id=pk, moderator=request.user)
    return HttpResponse(status=204)


@login_required
@review_required
def queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None)
    filters = (
        selectors.QueueFilters(**{k: v for k, v in form.cleaned_data.items() if v not in (None, "")})
        if (form.is_bound and form.is_valid())
        else selectors.QueueFilters()
    )
    page = Paginator(selectors.review_queue(moderator=request.user, filters=filters), 50).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "moderation/queue.html",
        {
            "page": page,
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


@require_POST
@login_required
@review_required
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
    return redirect(f"{reverse('queue_next')}?after={pk}")


@login_required
def submission_appeal(request: HttpRequest, pk: int) -> HttpResponse:
    submission = _visible_submission(request, pk)
    if submission.contributor_id != request.user.pk:
        raise PermissionDenied("Only the contributor who uploaded it can appeal.")
    form = AppealForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.appeal_create(submission_id=pk, contributor=request.user, message=form.cleaned_data["message"])
        except (services.AppealRefused, services.TransitionRefused) as exc:
            messages.error(request, str(exc))
        else:
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


@login_required
@review_required
def appeal_queue(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.appeal_queue(moderator=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "moderation/appeal_queue.html", {"page": page})


@require_POST
@login_required
@review_required
def appeal_decide(request: HttpRequest, pk: int) -> HttpResponse:
    appeal = get_object_or_404(Appeal, pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a reason that fits the decision.")
        return redirect("submission_detail", pk=appeal.submission_id)
    try:
        decision = services.appeal_decide(
            appeal_id=pk,
            moderator=request.user,
            outcome=form.cleaned_data["outcome"],
            reason_code=form.cleaned_data["reason"].code,
            note=form.cleaned_data["note"],
        )
    except (services.AppealRefused, services.TransitionRefused) as exc:
        messages.error(request, f"Not applied: {exc}")
        return redirect("submission_detail", pk=appeal.submission_id)
    messages.success(request, f"Appeal on #{appeal.submission_id}: {decision.get_outcome_display().lower()}.")
    return redirect("appeal_queue")


@require_POST
@login_required
@review_required
def submission_requeue(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.submission_requeue(submission_id=pk, actor=request.user, reason="Re-queued by a moderator.")
    except services.TransitionRefused as exc:
        messages.error(request, f"Not re-queued: {exc}")
    else:
        messages.success(request, f"Submission #{pk} is queued for analysis again.")
    return redirect("submission_detail", pk=pk)


@login_required
@permission_required("audit.view_auditevent", raise_exception=True)
def audit_log(request: HttpRequest) -> HttpResponse:
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


def _statistics_filters(request: HttpRequest) -> tuple[StatisticsFilterForm, dict, list[str]]:
    names = statistics.model_names_seen()
    form = StatisticsFilterForm(request.GET or None, model_names=names)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    return (
        form,
        names,
        {
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
            "model_name": data.get("model_name") or model_active_name(),
        },
    )


@login_required
@permission_required("moderation.view_statistics", raise_exception=True)
def statistics_page(request: HttpRequest) -> HttpResponse:
    form, names, filters = _statistics_filters(request)
    by_scenery = statistics.scenery_statistics(**filters)
    daily = statistics.daily_statistics(**filters)
    models = statistics.model_comparison(date_from=filters["date_from"], date_to=filters["date_to"], model_names=names)
    chart_data = statistics.chart_series(by_scenery=by_scenery, daily=daily, models=models)
    query = request.GET.urlencode()
    return render(
        request,
        "moderation/statistics.html",
        {
            "form": form,
            "by_scenery": by_scenery,
            "daily": daily,
            "models": models,
            "chart_data": chart_data,
            "query": query,
        },
    )


@login_required
@permission_required("moderation.view_statistics", raise_exception=True)
def statistics_csv(request: HttpRequest) -> HttpResponse:
    """Per-scenery rows plus the overall row (?table=daily: one row per day), for spreadsheets."""
    _, _, filters = _statistics_filters(request)
    daily = request.GET.get("table") == "daily"
    response = HttpResponse(content_type="text/csv")
    name = f"statistics-{filters['model_name']}-{'daily' if daily else 'scenery'}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    key = "day" if daily else "scenery"
    writer.writerow(["model", key, *statistics.FIGURE_FIELDS])
    if daily:
        rows = [(d["day"].isoformat(), d) for d in statistics.daily_statistics(**filters)["days"]]
    else:
        by_scenery = statistics.scenery_statistics(**filters)
        rows = [(r["scenery"], r) for r in by_scenery["rows"]] + [("overall", by_scenery["overall"])]
    for label, figures in rows:
        writer.writerow(
            [
                filters["model_name"],
                label,
                *("" if figures[f] is None else figures[f] for f in statistics.FIGURE_FIELDS),
            ]
        )
    return response


def _report_path(name: str, suffix: str) -> Path:
    # Only shipped model names reach the file system, so a crafted name cannot leave the weights folder.
    if name not in model_names_available():
        raise Http404("No such model.")
    return Path(settings.DETECTOR_WEIGHTS_DIR) / name / f"report.{suffix}"


@login_required
@permission_required("moderation.configure_detector", raise_exception=True)
def model_settings(request: HttpRequest) -> HttpResponse:
    return _model_settings_render(request, selected=request.GET.get("model", ""))


def _model_settings_render(
    request: HttpRequest, *, selected: str, thresholds_form: ThresholdsForm | None = None
) -> HttpResponse:
    names = model_names_available()
    active = model_active_name()
    selected = selected if selected in names else active
    card = model_card_get(name=selected)
    if card and thresholds_form is None:
        setting = ModelSetting.objects.filter(model_name=selected).first()
        thresholds_form = ThresholdsForm(card_band=card["thresholds"], current=setting.thresholds if setting else {})
    report_json = _report_path(selected, "json") if card else None
    return render(
        request,
        "moderation/model_settings.html",
        {
            "names": names,
            "active": active,
            "selected": selected,
            "card": card,
            "activate_form": ModelActivateForm(initial={"model_name": active}, model_names=names),
            "thresholds_form": thresholds_form,
            "report_summary": _report_summary(json.loads(report_json.read_text()) if report_json.is_file() else None)
            if report_json
            else [],
            "has_report_html": bool(card) and _report_path(selected, "html").is_file(),
        },
    )


@require_POST
@login_required
@permission_required("moderation.configure_detector", raise_exception=True)
def model_activate(request: HttpRequest) -> HttpResponse:
    form = ModelActivateForm(request.POST, model_names=model_names_available())
    if not form.is_valid():
        messages.error(request, "Choose a model that has trained weights.")
        return redirect("model_settings")
    name = form.cleaned_data["model_name"]
    services_settings.model_setting_activate(model_name=name, actor=request.user)
    messages.success(request, f"{name} is now the active model for new uploads.")
    return redirect(f"{reverse('model_settings')}?model={name}")


@require_POST
@login_required
@permission_required("moderation.configure_detector", raise_exception=True)
def model_thresholds(request: HttpRequest, name: str) -> HttpResponse:
    card = model_card_get(name=name) if name in model_names_available() else None
    if card is None:
        raise Http404("No such model.")
    form = ThresholdsForm(request.POST, card_band=card["thresholds"], current={})
    if not form.is_valid():
        return _model_settings_render(request, selected=name, thresholds_form=form)
    services_settings.model_thresholds_update(
        model_name=name, thresholds=form.cleaned_data["bands"], actor=request.user
    )
    messages.success(request, f"Thresholds of {name} saved; they apply to analyses from now on.")
    return redirect(f"{reverse('model_settings')}?model={name}")


def _report_summary(report: dict | None) -> list[tuple[str, object]]:
    """The headline numbers of report.json's test split; the full report is the HTML page."""
    if not report:
        return []
    test = report.get("test", {})
    return [
        (key, round(value, 4) if isinstance(value, float) else value)
        for key, value in test.items()
        if isinstance(value, int | float | str | None)
    ]


@login_required
@permission_required("moderation.view_statistics", raise_exception=True)
def model_report(request: HttpRequest, name: str) -> FileResponse:
    path = _report_path(name, "html")
    if not path.is_file():
        raise Http404(f"{name} has no evaluation report yet.")
    response = FileResponse(path.open("rb"), content_type="text/html; charset=utf-8")
    # The report is generated offline; sandboxed, it can show its inline plots but run nothing in the portal.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return response
