"""End to end: photos uploaded through the REST API to verdicts from one Celery worker, against the model alone.

    .venv/bin/python -m benchmarks.pipeline --model clip_probe_aug mobilenet_v2 --rate 3 --seconds 60
    .venv/bin/python -m benchmarks.pipeline --model clip_probe_aug --batch-size 1 8 --rate 8 --seconds 60

For each model it starts the real stack in production settings (DJANGO_DEBUG=0): a PostgreSQL database of its
own (--database-url: created, migrated, dropped at the end), a Redis database of its own (--redis-url: flushed
before and after; the Redis and PostgreSQL servers themselves are never stopped), gunicorn, one Celery
worker (--pool solo, queues gpu,default) serving the model as DETECTOR_DEFAULT_MODEL and, as docker-compose runs
them, a heatmap worker (queue heatmaps) under the idle CPU policy (`chrt --idle 0`), so it renders flagged items'
heatmaps on what the analysis worker leaves; `--heatmaps same-worker` has the analysis worker take them too
(queues gpu,heatmaps,default: a render then holds up the verdicts queued behind it). It creates an ingestion
account and its token, uploads distinct photos (generated at --photo-size, or the files under --images) one
per request at --rate per second for --seconds, and waits until every upload has its verdict.

Reported per model, from the submissions' upload times and their "analysis started" / "analysed" audit events:
- sustained analyses/s: verdicts per second from the first analysis taken to the last verdict; a --rate above
  the worker's capacity (the backlog never empties, see max backlog) makes this the capacity, a lower one just
  gives back the rate;
- busy analyses/s: analyses per second of the worker's time inside analysis tasks (no broker hops; a batch's
  submissions share that time);
- the share flagged (each flagged item's heatmap is rendered in the background, on the same machine);
- upload-to-verdict p50/p95/max, and the backlog drain time (last verdict after the last upload);
- the ratio of sustained throughput to the engine alone: the same model, opened as the worker opens it,
  scoring already preprocessed images at batch 1 and 16 in this process (no queue, no database), at its
  better batch size, the mean of a measurement before the stack starts and one after it stops (their ratio
  is printed: how much the machine's load moved meanwhile), and against batch 1 (one image per call); and decode
  + preprocessing alone, for scale. With --batch-size 1 8 the worker runs once per batch size (1 is one image
  per task, as before batching), so the same run compares them.

With --backlog-first the analysis worker stops consuming during the uploads and resumes after the last one:
the sustained rate is then the worker's own, with no web traffic on the same cores (as on a worker machine of
its own), which a run at a steady rate on one 2-core machine cannot give.

Absolute figures depend on the machine and its load; the ratios within one run are what to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "bench-ingest"
SCENERIES = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
UNFINISHED = ("received", "queued", "analysing")


def photos_generate(*, count: int, width: int, height: int) -> list[bytes]:
    """Distinct camera-sized JPEGs: smooth random shapes plus sensor-like noise, so they decode and compress
    like photographs rather than flat fills."""
    rng = np.random.default_rng(0)
    photos = []
    for _ in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (height // 64, width // 64, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
        noisy = np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(noisy).save(buffer, format="JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos


def photos_read(*, folder: Path, count: int) -> list[bytes]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    photos = list({p.read_bytes(): None for p in files})  # distinct bytes only: a duplicate is refused
    if len(photos) < count:
        raise SystemExit(f"{folder} holds {len(photos)} distinct images, the run needs {count}")
    return photos[:count]


def port_free() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_recreate(url: str, *, drop_only: bool = False) -> None:
    """Drop (and create) the benchmark's own database, connected to the server's `postgres` database."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()  # this database number only; the server and other numbers stay


@contextlib.contextmanager
def process_running(command: list[str], *, env: dict[str, str], log: Path, ready) -> Iterator[subprocess.Popen]:
    """Start `command`, wait until `ready()` (90 s at most), stop it afterwards; its log is printed on failure."""
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while not ready():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command)} did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def answering(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def upload(*, port: int, token: str, name: str, data: bytes, scenery: str) -> int:
    """POST one photo as the ingestion pipeline does; the HTTP status."""
    boundary = secrets.token_hex(16)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="scenery"\r\n\r\n{scenery}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Accept": "application/json",
        "Host": "127.0.0.1",
        "X-Forwarded-Proto": "https",  # TLS ends in front of gunicorn in production
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/api/submissions/", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def uploads_send(*, port: int, token: str, photos: list[bytes], rate: float) -> list[int]:
    """Send the photos on a fixed schedule (photo i at i / rate s), whatever the answers' latency."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        for i, data in enumerate(photos):
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            futures.append(
                pool.submit(upload, port=port, token=token, name=f"{i}.jpg", data=data, scenery=SCENERIES[i % 6])
            )
        return [future.result() for future in futures]


def queues_idle_wait(url: str, *, timeout: float) -> None:
    """Wait until the broker holds no message (priority lists included) and the worker none unacknowledged: the
    warm-up's background work (a flagged item's heatmap) must not run inside the measured window."""
    import redis

    client, deadline = redis.Redis.from_url(url), time.monotonic() + timeout
    while time.monotonic() < deadline:
        lists = [key for key in client.scan_iter() if client.type(key) == b"list"]
        if not client.hlen("unacked") and not any(client.llen(key) for key in lists):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the worker was still busy after the warm-up ({timeout:.0f} s)")


def analysis_consuming(*, on: bool) -> None:
    """Stop or resume the analysis worker's consuming of queue gpu (Celery remote control)."""
    from portal.celery import app

    control = app.control.add_consumer if on else app.control.cancel_consumer
    if not control("gpu", destination=[f"analysis@{socket.gethostname()}"], reply=True, timeout=10):
        raise RuntimeError("the analysis worker did not answer the remote control")


def unfinished_wait(*, user, timeout: float) -> int:
    """Wait until none of the account's submissions awaits a verdict; how many still do at the timeout."""
    from moderation.models import Submission

    deadline = time.monotonic() + timeout
    while True:
        left = Submission.objects.filter(contributor=user, state__in=UNFINISHED).count()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


def pipeline_figures(*, user, since) -> dict:
    """Throughput, latency and backlog from the submissions' rows and audit events (uploads after `since`)."""
    from django.db.models import Max

    from audit.models import AuditEvent
    from moderation.lifecycle import Action
    from moderation.models import Submission

    submissions = Submission.objects.filter(contributor=user, created_at__gt=since)
    uploaded = dict(submissions.values_list("pk", "created_at"))
    events = AuditEvent.objects.filter(submission__in=submissions)

    def last(action: str) -> dict:
        rows = events.filter(action=action).values("submission_id").annotate(at=Max("created_at"))
        return {row["submission_id"]: row["at"] for row in rows}

    analysed, started = last(Action.ANALYSE), last(Action.ANALYSIS_START)
    states = dict.fromkeys(["flagged", "cleared", "failed"], 0)
    for state in submissions.values_list("state", flat=True):
        states[state] = states.get(state, 0) + 1
    verdicts = sorted(analysed.values())
    latencies = np.array([(analysed[pk] - uploaded[pk]).total_seconds() for pk in analysed])
    busy = _union_seconds(sorted((started[pk], analysed[pk]) for pk in analysed))
    # Backlog seen at each verdict: uploads so far minus verdicts so far.
    upload_times = sorted(uploaded.values())
    backlog = [int(np.searchsorted(upload_times, at, side="right")) - (i + 1) for i, at in enumerate(verdicts)]
    span = (verdicts[-1] - min(started.values())).total_seconds()  # from the first analysis taken
    return {
        "uploads": len(uploaded),
        "upload_rate": (len(upload_times) - 1) / (upload_times[-1] - upload_times[0]).total_seconds(),
        "verdicts": len(verdicts),
        "states": states,
        "flagged_share": states["flagged"] / len(uploaded),
        "sustained_per_s": len(verdicts) / span,
        "busy_per_s": len(analysed) / busy,
        "p50_s": float(np.percentile(latencies, 50)),
        "p95_s": float(np.percentile(latencies, 95)),
        "max_s": float(latencies.max()),
        "max_backlog": max(backlog),
        "drain_s": (verdicts[-1] - upload_times[-1]).total_seconds(),
    }


def _union_seconds(intervals: list[tuple]) -> float:
    """Seconds covered by sorted (start, end) intervals: a batch's submissions share the worker's time."""
    total, reach = 0.0, None
    for start, end in intervals:
        if reach is None or start > reach:
            total, reach = total + (end - start).total_seconds(), end
        elif end > reach:
            total, reach = total + (end - reach).total_seconds(), end
    return total


class Engine:
    """The model alone, opened as the worker opens it, scoring already preprocessed images (no queue, no
    database); decode + preprocessing alone is timed once, for scale."""

    def __init__(self, *, model: str, photos: list[bytes]) -> None:
        from detection.core.loading import detector_open
        from detection.core.preprocess import image_decode

        self.detector = detector_open(weights_dir=ROOT / "detection" / "weights", name=model)
        started = time.perf_counter()
        self.arrays = [self.detector.canonical(image_decode(data)) for data in photos[:16]]
        self.preprocess_per_s = len(self.arrays) / (time.perf_counter() - started)

    def rates(self, *, seconds: float) -> dict[int, float]:
        """Images per second at batch 1 and 16."""
        from benchmarks.inference import _rate

        return {
            batch: _rate(lambda c=self.arrays[:batch]: self.detector.predict_arrays(c), images=batch, seconds=seconds)
            for batch in (1, 16)
        }


def model_run(*, model: str, batch_size: int, args: argparse.Namespace, photos: list[bytes], scratch: Path) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from moderation.roles import CONTRIBUTOR

    connections.close_all()
    database_recreate(args.database_url)
    redis_flush(args.redis_url)
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(username=ACCOUNT)
    user.groups.add(Group.objects.get(name=CONTRIBUTOR))
    token = Token.objects.create(user=user).key
    env = {**os.environ, "DETECTOR_DEFAULT_MODEL": model, "ANALYSIS_BATCH_SIZE": str(batch_size)}
    engine = Engine(model=model, photos=photos[1:])
    # The engine runs before the stack starts and after it stops, on the machine the worker had: on a shared
    # machine the two differ, and their spread says how far to trust the ratio.
    before = engine.rates(seconds=args.engine_seconds)
    worker_log, port = scratch / f"worker-{model}.log", port_free()
    worker = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo"]
    worker += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"]
    own = args.heatmaps == "own-worker"
    heatmap_log = scratch / f"heatmap-worker-{model}.log"
    gunicorn = [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    with (
        process_running(
            [*worker, "-Q", "gpu,default" if own else "gpu,heatmaps,default", "-n", "analysis@%h"],
            env=env,
            log=worker_log,
            ready=lambda: "ready." in worker_log.read_text(),
        ),
        process_running(
            ["chrt", "--idle", "0", *worker, "-Q", "heatmaps", "-n", "heatmaps@%h"],
            env=env,
            log=heatmap_log,
            ready=lambda: "ready." in heatmap_log.read_text(),
        )
        if own
        else contextlib.nullcontext(),
        process_running(
            [*gunicorn, "--workers", str(args.web_workers), "--timeout", "120"],
            env=env,
            log=scratch / f"gunicorn-{model}.log",
            ready=lambda: answering(port),
        ),
    ):
        # One upload first, outside the figures: the worker's first task opens the model.
        status = upload(port=port, token=token, name="warm.jpg", data=photos[0], scenery="sea")
        if status != 201 or unfinished_wait(user=user, timeout=300):
            raise RuntimeError(f"the warm-up upload was not analysed ({status}):\n{worker_log.read_text()[-3000:]}")
        queues_idle_wait(args.redis_url, timeout=300)
        since = timezone.now()
        if args.backlog_first:
            analysis_consuming(on=False)
        statuses = uploads_send(port=port, token=token, photos=photos[1:], rate=args.rate)
        if args.backlog_first:
            analysis_consuming(on=True)
        left = unfinished_wait(user=user, timeout=args.drain_timeout)
        figures = {
            "model": model,
            "batch_size": batch_size,
            "heatmaps": args.heatmaps,
            "backlog_first": args.backlog_first,
            "refused_uploads": sum(s != 201 for s in statuses),
            "unfinished": left,
        }
        figures |= pipeline_figures(user=user, since=since)
    connections.close_all()
    database_recreate(args.database_url, drop_only=True)
    redis_flush(args.redis_url)
    after = engine.rates(seconds=args.engine_seconds)
    for batch in (1, 16):
        figures[f"engine_b{batch}_per_s"] = (before[batch] + after[batch]) / 2
    best_before, best_after = max(before.values()), max(after.values())
    figures["engine_after_vs_before"] = best_after / best_before
    figures["engine_best_per_s"] = (best_before + best_after) / 2
    figures["preprocess_per_s"] = engine.preprocess_per_s
    figures["sustained_vs_engine"] = figures["sustained_per_s"] / figures["engine_best_per_s"]
    figures["busy_vs_engine"] = figures["busy_per_s"] / figures["engine_best_per_s"]
    figures["sustained_vs_engine_b1"] = figures["sustained_per_s"] / figures["engine_b1_per_s"]
    return figures


COLUMNS = [
    ("model", "{}"),
    ("batch_size", "{}"),
    ("upload_rate", "{:.2f}"),
    ("sustained_per_s", "{:.2f}"),
    ("busy_per_s", "{:.2f}"),
    ("engine_b1_per_s", "{:.1f}"),
    ("engine_b16_per_s", "{:.1f}"),
    ("engine_after_vs_before", "{:.2f}x"),
    ("sustained_vs_engine", "{:.2f}x"),
    ("busy_vs_engine", "{:.2f}x"),
    ("sustained_vs_engine_b1", "{:.2f}x"),
    ("flagged_share", "{:.0%}"),
    ("p50_s", "{:.2f}"),
    ("p95_s", "{:.2f}"),
    ("max_s", "{:.2f}"),
    ("max_backlog", "{}"),
    ("drain_s", "{:.1f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["clip_probe_aug"], help="bundles under detection/weights")
    parser.add_argument(
        "--batch-size", type=int, nargs="+", default=[8], help="the worker's ANALYSIS_BATCH_SIZE, each in turn"
    )
    parser.add_argument("--rate", type=float, default=3.0, help="uploads per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long uploads are sent")
    parser.add_argument("--images", type=Path, help="a folder of distinct photos (default: generated ones)")
    parser.add_argument("--photo-size", default="1600x1200", help="width x height of generated photos")
    parser.add_argument(
        "--heatmaps",
        choices=["own-worker", "same-worker"],
        default="own-worker",
        help="flagged items' heatmaps: a worker of their own, idle CPU policy (as deployed), or the analysis worker",
    )
    parser.add_argument(
        "--backlog-first",
        action="store_true",
        help="every upload first, then analysis: the worker's rate with no web traffic beside it (latencies then "
        "count the wait for the uploads to end)",
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="seconds to wait for the last verdict")
    parser.add_argument("--engine-seconds", type=float, default=5.0, help="seconds per engine measurement")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal_bench_pipeline")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()

    count = int(args.rate * args.seconds) + 1  # + the warm-up upload
    if args.images:
        photos = photos_read(folder=args.images, count=count)
    else:
        width, height = (int(side) for side in args.photo_size.split("x"))
        photos = photos_generate(count=count, width=width, height=height)
    scratch = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_MEDIA_ROOT=str(scratch / "media"),
        DJANGO_STATIC_ROOT=str(scratch / "static"),
        DATABASE_URL=args.database_url,
        CELERY_BROKER_URL=args.redis_url,
        REDIS_CACHE_URL=args.redis_url,
        API_INGESTION_ACCOUNTS=ACCOUNT,
        # The platform's upload rate limit (600/minute) is policy, not capacity: above it a run measures the 429s.
        API_INGESTION_UPLOAD_THROTTLE_RATE="100000/minute",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    rows = []
    try:
        for model in args.model:
            for batch_size in args.batch_size:
                rows.append(model_run(model=model, batch_size=batch_size, args=args, photos=photos, scratch=scratch))
    finally:
        from django.db import connections

        connections.close_all()
        database_recreate(args.database_url, drop_only=True)
        redis_flush(args.redis_url)
        shutil.rmtree(scratch, ignore_errors=True)
    print(" | ".join(name for name, _ in COLUMNS))
    for row in rows:
        print(" | ".join(fmt.format(row[name]) for name, fmt in COLUMNS))
    print(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
