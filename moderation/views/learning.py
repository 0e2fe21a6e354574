"""What the portal learns from its moderators, on the model settings page: the live false-flag rate against
the model card's promise (and, below it, recalibration on decisions)."""

from django.http import HttpRequest

from moderation import reporting


def live_rates_panel(request: HttpRequest, model_name: str, card: dict) -> dict | None:
    return reporting.live_false_flag_check(model_name=model_name)
