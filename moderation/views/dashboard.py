"""Admins' statistics page and its CSV export."""

import csv

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from detection.selectors import model_active_name
from moderation import reporting
from moderation.forms import (
    StatisticsFilterForm,
)

review_required = permission_required("moderation.review_submission", raise_exception=True)


def _statistics_filters(request: HttpRequest) -> tuple[StatisticsFilterForm, dict, list[str]]:
    names = reporting.model_names_seen()
    form = StatisticsFilterForm(request.GET or None, model_names=names)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    return (
        form,
        names,
        {
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
            "model_name": data.get("model_name") or model_active_name(),
            "scenery_by": data.get("scenery_by") or "declared",
        },
    )


@login_required
@permission_required("moderation.view_statistics", raise_exception=True)
def statistics_page(request: HttpRequest) -> HttpResponse:
    form, names, filters = _statistics_filters(request)
    by_scenery = reporting.scenery_statistics(**filters)
    daily = reporting.daily_statistics(**filters)
    models = reporting.model_comparison(date_from=filters["date_from"], date_to=filters["date_to"], model_names=names)
    live = reporting.live_statistics(**filters)
    chart_data = reporting.chart_series(by_scenery=by_scenery, daily=daily, models=models, live=live)
    query = request.GET.urlencode()
    return render(
        request,
        "moderation/statistics.html",
        {
            "form": form,
            "by_scenery": by_scenery,
            "daily": daily,
            "models": models,
            "live": live,
            "live_tables": reporting.live_tables(live),
            "chart_data": chart_data,
            "query": query,
        },
    )


@login_required
@permission_required("moderation.view_statistics", raise_exception=True)
def statistics_csv(request: HttpRequest) -> HttpResponse:
    """Per-scenery rows plus the overall row (?table=daily: one row per day; ?table=live: the live error rates
    per version, scenery and week), for spreadsheets."""
    _, _, filters = _statistics_filters(request)
    if request.GET.get("table") == "live":
        return _live_csv(filters)
    daily = request.GET.get("table") == "daily"
    response = HttpResponse(content_type="text/csv")
    name = f"statistics-{filters['model_name']}-{'daily' if daily else 'scenery'}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    key = "day" if daily else "scenery"
    writer.writerow(["model", key, *reporting.FIGURE_FIELDS])
    if daily:
        rows = [(d["day"].isoformat(), d) for d in reporting.daily_statistics(**filters)["days"]]
    else:
        by_scenery = reporting.scenery_statistics(**filters)
        rows = [(r["scenery"], r) for r in by_scenery["rows"]] + [("overall", by_scenery["overall"])]
    for label, figures in rows:
        writer.writerow(
            [
                filters["model_name"],
                label,
                *("" if figures[f] is None else figures[f] for f in reporting.FIGURE_FIELDS),
            ]
        )
    return response


def _live_csv(filters: dict) -> HttpResponse:
    live = reporting.live_statistics(**filters)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="statistics-{filters["model_name"]}-live.csv"'
    writer = csv.writer(response)
    writer.writerow(["model", "by", "key", *reporting.LIVE_FIELDS])
    rows = [
        *(("version", v["version"], v) for v in live["versions"]),
        *(("scenery", r["scenery"], r) for r in live["sceneries"]),
        *(("week", w["week"].isoformat(), w) for w in live["weeks"]),
        ("overall", "", live["overall"]),
    ]
    for by, key, figures in rows:
        writer.writerow(
            [filters["model_name"], by, key, *("" if figures[f] is None else figures[f] for f in reporting.LIVE_FIELDS)]
        )
    return response
