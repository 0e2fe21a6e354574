"""How the statistics page holds up at 1,000,000 submissions, on PostgreSQL (target: under 300 ms).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_stats .venv/bin/python -m benchmarks.statistics_page

Creates (or reuses) the database named in DATABASE_URL and fills it with ROWS submissions uploaded over a year,
each analysed by the active model (a tenth by a second model too), in the states a live portal holds: most
cleared, some flagged, the reviewed ones approved or rejected, a share of cleared ones spot-checked. Rows written
this way bypass the services, so it then rebuilds the statistics counters (manage.py statistics_rebuild) and
prints how long that took. Then it times the whole page (the view and its template, as an admin opens it) and
each figure it shows, for all time and for the last 30 days, and prints each as a ratio to the 300 ms target.
"""

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on the path and shadow the standard library's statistics.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import os  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402

import django  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.timing import median_ms  # noqa: E402
from detection.selectors import model_active_name  # noqa: E402
from moderation import reporting  # noqa: E402
from moderation.counters import statistics_counts_rebuild  # noqa: E402
from moderation.models import StatisticsEntry, Submission  # noqa: E402
from moderation.views.dashboard import statistics_page  # noqa: E402

ROWS = int(os.environ.get("ROWS", 1_000_000))
REPEATS = int(os.environ.get("REPEATS", 3))
TARGET_MS = 300
OTHER_MODEL = "bench-other"

# One statement per table, so a million rows take seconds, not the ORM's minutes. Submission i is uploaded
# i * (a year / ROWS) ago; its state, verdict and scenery cycle with i so every figure has data. The scenery head
# agrees with the contributor on most uploads, sees another scenery in one in eleven and had no answer for one in 13.
FILL_SUBMISSIONS = """
INSERT INTO moderation_submission (original, original_name, sha256, image_format, width, height, size_bytes,
    scenery, suggested_scenery, declared_ai, state, state_changed_at, failure_reason, ai_probability, verdict,
    created_at, contributor_id, spot_check_share)
SELECT 'originals/bench/' || i || '.jpg', i || '.jpg', lpad(to_hex(i), 64, '0'), 'JPEG', 4000, 3000, 5000000,
    (ARRAY['buildings','forest','glacier','mountain','sea','street','other'])[1 + i %% 7],
    CASE WHEN i %% 13 = 0 THEN ''
         ELSE (ARRAY['buildings','forest','glacier','mountain','sea','street','other'])
              [1 + (i + (i %% 11 = 0)::int) %% 7]
    END, false,
    CASE WHEN i %% 10 < 7 THEN 'cleared' WHEN i %% 10 = 7 THEN 'flagged' WHEN i %% 10 = 8 THEN 'approved'
         ELSE 'rejected' END,
    now() - make_interval(secs => i * 31536000.0 / %(rows)s), '',
    CASE WHEN i %% 10 < 7 THEN (i %% 300) / 1000.0 ELSE 0.5 + (i %% 500) / 1000.0 END,
    CASE WHEN i %% 10 < 7 THEN 'real' WHEN i %% 3 = 0 THEN 'uncertain' ELSE 'ai' END,
    now() - make_interval(secs => i * 31536000.0 / %(rows)s),
    %(contributor)s,
    CASE WHEN i %% 10 < 7 AND i %% 50 = 0 THEN 0.02 END
FROM generate_series(%(start)s, %(rows)s) AS i
"""
FILL_DETECTIONS = """
INSERT INTO detection_detection (submission_id, model_name, model_version, ai_probability, verdict, threshold_low,
    threshold_high, latency_ms, created_at)
SELECT s.id, m.name, 'v' || (1 + s.id %% 2), coalesce(s.ai_probability, 0), s.verdict, 0.3, 0.7, 40 + s.id %% 60,
    s.created_at
FROM moderation_submission s
CROSS JOIN (VALUES (%(active)s), (%(other)s)) AS m(name)
WHERE s.id > %(after)s AND (m.name = %(active)s OR s.id %% 10 = 0)
"""


def database_fill() -> None:
    call_command("migrate", verbosity=0)
    have = Submission.objects.count()
    if have >= ROWS:
        counters_rebuild(only_if_empty=True)
        return
    contributor = get_user_model().objects.get_or_create(username="bench-contributor")[0]
    last = Submission.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with connection.cursor() as cursor:
        cursor.execute(FILL_SUBMISSIONS, {"rows": ROWS, "start": have + 1, "contributor": contributor.pk})
        cursor.execute(FILL_DETECTIONS, {"active": model_active_name(), "other": OTHER_MODEL, "after": last})
        cursor.execute("ANALYZE")
    counters_rebuild(only_if_empty=False)


def counters_rebuild(*, only_if_empty: bool) -> None:
    if only_if_empty and StatisticsEntry.objects.exists():
        return
    started = time.perf_counter()
    counted = statistics_counts_rebuild()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"rebuilt the statistics counters from {counted:,} detections in {time.perf_counter() - started:.0f} s")


def timed(fn) -> float:
    return median_ms(fn, repeats=REPEATS)


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("set DATABASE_URL to a PostgreSQL database")
    database_fill()
    admin = get_user_model().objects.get_or_create(username="bench-admin", defaults={"is_superuser": True})[0]
    since = (timezone.now() - timedelta(days=30)).date()

    def page(query: dict):
        def run() -> None:
            request = RequestFactory().get("/statistics/", query)
            request.user = admin
            assert statistics_page(request).status_code == 200

        return run

    filters = {"date_from": None, "date_to": None, "model_name": model_active_name()}
    recent = {**filters, "date_from": since}
    cases = {
        "whole page, all time": page({}),
        "whole page, last 30 days": page({"date_from": since.isoformat()}),
        "per scenery, all time": lambda: reporting.scenery_statistics(**filters),
        "per day, all time": lambda: reporting.daily_statistics(**filters),
        "models side by side, all time": lambda: reporting.model_comparison(
            date_from=None, date_to=None, model_names=reporting.model_names_seen()
        ),
        "live error rates, all time": lambda: reporting.live_statistics(**filters),
        "per scenery, last 30 days": lambda: reporting.scenery_statistics(**recent),
    }
    print(f"{Submission.objects.count():,} submissions; median of {REPEATS} runs; target {TARGET_MS} ms\n")
    print(f"{'what':<34}{'ms':>10}{'x target':>10}")
    for name, fn in cases.items():
        ms = timed(fn)
        print(f"{name:<34}{ms:>10.0f}{ms / TARGET_MS:>9.2f}x", flush=True)


if __name__ == "__main__":
    main()
