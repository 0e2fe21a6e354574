"""The detector's pages: model settings and reports (admins), heatmap images and rendering (moderators)."""

import json
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from common.web import domain_errors
from detection import selectors as detection_selectors
from detection import services as detection_services
from detection import services_settings
from detection.forms import ModelActivateForm, ThresholdsForm
from detection.models import Detection, Heatmap, ModelSetting
from detection.panels import model_panels
from detection.selectors import model_active_name, model_card_get, model_names_available

review_required = permission_required("moderation.review_submission", raise_exception=True)


@login_required
@review_required
def heatmap_image(request: HttpRequest, pk: int) -> FileResponse:
    heatmap = get_object_or_404(Heatmap, pk=pk)
    return FileResponse(default_storage.open(heatmap.image.name, "rb"), content_type="image/png")


def detection_item_page(request: HttpRequest, pk: int) -> str:
    submission_id = Detection.objects.values_list("submission_id", flat=True).get(pk=pk)
    return reverse("submission_detail", args=[submission_id])


@require_POST
@login_required
@review_required
@domain_errors(back=detection_item_page, prefix="Not rendered")
def heatmap_request_post(request: HttpRequest, pk: int) -> HttpResponse:
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


@require_GET
@never_cache
def health_json(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitors, unauthenticated: 503 while the active model is refused by its
    self-test on some worker or has no weights. Counts only; the reasons are on the model settings page."""
    health = detection_selectors.health_get()
    return JsonResponse(
        {
            "status": health.status,
            "model": health.model,
            "selftest": {"hosts_passed": health.hosts_passed, "hosts_refused": health.hosts_refused},
        },
        status=200 if health.ok else 503,
    )


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
        current = setting.thresholds if setting else {}
        thresholds_form = ThresholdsForm(card_band=card.thresholds.band(), current=current)
    report_json = _report_path(selected, "json") if card else None
    return render(
        request,
        "detection/model_settings.html",
        {
            "names": names,
            "active": active,
            "selected": selected,
            "card": card,
            "leave_source_out": detection_selectors.leave_source_out_get(card=card) if card else None,
            "activate_form": ModelActivateForm(initial={"model_name": active}, model_names=names),
            "thresholds_form": thresholds_form,
            "report_summary": _report_summary(json.loads(report_json.read_text()) if report_json.is_file() else None)
            if report_json
            else [],
            "has_report_html": bool(card) and _report_path(selected, "html").is_file(),
            "selftests": detection_selectors.selftest_results(model_name=selected) if card else [],
            "threshold_changes": detection_selectors.threshold_changes(model_name=selected) if card else [],
            "panels": model_panels(request=request, model_name=selected, card=card) if card else [],
        },
    )


def _settings_page(request: HttpRequest, **kwargs: object) -> str:
    return reverse("model_settings")


@require_POST
@login_required
@permission_required("moderation.configure_detector", raise_exception=True)
@domain_errors(back=_settings_page, prefix="Not saved")
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
@domain_errors(back=_settings_page, prefix="Not saved")
def model_thresholds(request: HttpRequest, name: str) -> HttpResponse:
    card = model_card_get(name=name) if name in model_names_available() else None
    if card is None:
        raise Http404("No such model.")
    form = ThresholdsForm(request.POST, card_band=card.thresholds.band(), current={})
    if not form.is_valid():
        return _model_settings_render(request, selected=name, thresholds_form=form)
    services_settings.model_thresholds_update(
        model_name=name, thresholds=form.cleaned_data["bands"], actor=request.user
    )
    messages.success(request, f"Thresholds of {name} saved; they apply to analyses from now on.")
    return redirect(f"{reverse('model_settings')}?model={name}")


@require_POST
@login_required
@permission_required("moderation.configure_detector", raise_exception=True)
@domain_errors(back=_settings_page, prefix="Not reverted")
def model_thresholds_revert_post(request: HttpRequest, pk: int) -> HttpResponse:
    change = services_settings.model_thresholds_revert(change_id=pk, actor=request.user)
    messages.success(request, f"Thresholds of {change.model_name} put back as before change #{pk}.")
    return redirect(f"{reverse('model_settings')}?model={change.model_name}")


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
