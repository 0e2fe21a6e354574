"""`{{ value|percent }}`: a rate as "1.9 %", or a dash when undefined; live error rates need the decimal
that widthratio rounds away."""

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    return "\u2013" if value is None else f"{value * 100:.{digits}f}\u00a0%"
