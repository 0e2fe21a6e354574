"""What the portal learns from its moderators, on the model settings page: the live false-flag rate against
the model card's promise, and recalibration on decisions (preview, then apply on confirmation)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from common.web import domain_errors
from detection.core.card import ModelCard
from moderation import recalibration, reporting

configure_required = permission_required("moderation.configure_detector", raise_exception=True)


def live_rates_panel(request: HttpRequest, model_name: str, card: ModelCard) -> dict | None:
    return reporting.live_false_flag_check(model_name=model_name)


def recalibration_panel(request: HttpRequest, model_name: str, card: ModelCard) -> dict | None:
    return {"model_name": model_name}


class RecalibrationConfirmForm(forms.Form):
    low = forms.FloatField(min_value=0, max_value=1, widget=forms.HiddenInput)
    high = forms.FloatField(min_value=0, max_value=1, widget=forms.HiddenInput)


def _model_page(request: HttpRequest, name: str) -> str:
    return f"{reverse('model_settings')}?model={name}"


@require_POST
@login_required
@configure_required
@domain_errors(back=_model_page, prefix="Not recalibrated")
def recalibration_preview(request: HttpRequest, name: str) -> HttpResponse:
    proposal = recalibration.recalibration_propose(model_name=name)
    # repr-exact floats, so the confirmation names exactly the thresholds shown.
    form = RecalibrationConfirmForm(
        initial={"low": repr(proposal.proposed["low"]), "high": repr(proposal.proposed["high"])}
    )
    return render(request, "moderation/recalibration.html", {"proposal": proposal, "form": form})


@require_POST
@login_required
@configure_required
@domain_errors(back=_model_page, prefix="Not recalibrated")
def recalibration_apply_post(request: HttpRequest, name: str) -> HttpResponse:
    form = RecalibrationConfirmForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not recalibrated: preview the recalibration first.")
        return redirect(_model_page(request, name))
    change = recalibration.recalibration_apply(
        model_name=name,
        confirmed_low=form.cleaned_data["low"],
        confirmed_high=form.cleaned_data["high"],
        actor=request.user,
    )
    messages.success(request, f"Thresholds of {name} recalibrated (change #{change.pk}); revert it below if needed.")
    return redirect(_model_page(request, name))
