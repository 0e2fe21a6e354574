"""How the review queue holds up at 100,000 pending items, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench .venv/bin/python benchmarks/review_queue.py

Creates (or reuses) the database named in DATABASE_URL, fills it with ROWS flagged submissions, then times
the queries the queue page runs: the first page, the count above it, a deep page (by position, as the page
and the API fetch it, and by OFFSET, as they did before), a filtered page and the per-state counts.
The baseline is the same query, in the same run, with PostgreSQL's index scans switched off, so the
ratios say what the indexes buy; the plan of the first page is printed too.
"""

import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.timing import median_ms  # noqa: E402
from moderation import selectors  # noqa: E402
from moderation.models import State, Submission  # noqa: E402

ROWS = int(os.environ.get("ROWS", 100_000))
REPEATS = 7


def database_fill() -> None:
    call_command("migrate", verbosity=0)
    have = Submission.objects.filter(state=State.FLAGGED).count()
    if have >= ROWS:
        return
    users = [get_user_model().objects.get_or_create(username=f"bench{i}")[0] for i in range(50)]
    moderator = get_user_model().objects.get_or_create(username="bench-moderator")[0]
    now = timezone.now()
    sceneries = ["buildings", "forest", "glacier", "mountain", "sea", "street", "other"]
    batch = []
    for i in range(have, ROWS):
        batch.append(
            Submission(
                contributor=users[i % len(users)],
                original=f"originals/bench/{i}.jpg",
                original_name=f"{i}.jpg",
                sha256=f"{i:064x}",
                image_format="JPEG",
                width=4000,
                height=3000,
                size_bytes=5_000_000,
                scenery=sceneries[i % len(sceneries)],
                state=State.FLAGGED,
                state_changed_at=now,
                ai_probability=(i * 7919 % 10007) / 10007,
                verdict="ai" if i % 3 else "uncertain",
            )
        )
        if len(batch) == 5000:
            Submission.objects.bulk_create(batch)
            batch = []
    Submission.objects.bulk_create(batch)
    del moderator
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(fn) -> float:
    return median_ms(fn, repeats=REPEATS)


def without_indexes(fn):
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET enable_indexscan = off; SET enable_bitmapscan = off; SET enable_indexonlyscan = off")
        try:
            fn()
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET enable_indexscan; RESET enable_bitmapscan; RESET enable_indexonlyscan")

    return run


def main() -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("set DATABASE_URL to a PostgreSQL database")
    database_fill()
    moderator = get_user_model().objects.get(username="bench-moderator")

    def page(filters: selectors.QueueFilters | None = None, after: str = ""):
        return lambda: selectors.review_queue_page(moderator=moderator, filters=filters, after=after)

    queue = selectors.review_queue(moderator=moderator)
    # The position a moderator holds after following "Next" 999 times: the cursor of the page's last row.
    deep = selectors._cursor(selectors.QUEUE_ORDERINGS["likely-ai"], queue[49_949])
    cases = {
        "first page, most likely AI": page(),
        "count above the page": queue.count,
        "page 1000 by position (keyset)": page(after=deep),
        "page 1000 by OFFSET 49,950 (before)": lambda: list(queue[49_950:50_000]),
        "first page, oldest first": page(selectors.QueueFilters(ordering="oldest")),
        "first page, scenery=sea, P(AI) 0.6-0.9": page(
            selectors.QueueFilters(scenery="sea", probability_min=0.6, probability_max=0.9)
        ),
        "counts per state": selectors.state_counts,
    }
    total = Submission.objects.count()
    print(
        f"{total:,} submissions, {Submission.objects.filter(state=State.FLAGGED).count():,} flagged; "
        f"median of {REPEATS} runs\n"
    )
    print(f"{'query':<42}{'indexed ms':>12}{'no index ms':>13}{'speed-up':>10}")
    for name, fn in cases.items():
        fn()  # warm the cache so both columns read from memory
        indexed, baseline = timed(fn), timed(without_indexes(fn))
        print(f"{name:<42}{indexed:>12.2f}{baseline:>13.2f}{baseline / indexed:>9.1f}x")
    query = selectors.review_queue(moderator=moderator)[:50]
    print("\nplan of the first page:\n" + query.explain())


if __name__ == "__main__":
    main()
