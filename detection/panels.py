"""Sections other apps add to a model's settings page. Detection imports no app above it, yet the live error
rates and recalibration need moderators' decisions, so moderation registers them here from its AppConfig, as
each app registers its audit actions."""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest

from detection.core.card import ModelCard


@dataclass(frozen=True)
class ModelPanel:
    template: str
    # (request, model name, model card) -> the template's `panel` context, or None to show nothing.
    context: Callable[[HttpRequest, str, dict], dict | None]


_PANELS: list[ModelPanel] = []


def model_panel_register(*, template: str, context: Callable[[HttpRequest, str, dict], dict | None]) -> None:
    panel = ModelPanel(template=template, context=context)
    if panel not in _PANELS:
        _PANELS.append(panel)


def model_panels(*, request: HttpRequest, model_name: str, card: ModelCard) -> list[dict]:
    """[{"template", "context"}] for the registered panels that have something to show for this model."""
    shown = []
    for panel in _PANELS:
        context = panel.context(request, model_name, card)
        if context is not None:
            shown.append({"template": panel.template, "context": context})
    return shown
