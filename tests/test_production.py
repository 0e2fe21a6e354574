"""Production mode as deployed: DJANGO_DEBUG=0, collectstatic, `check --deploy`, gunicorn with two workers
sharing throttles and login lockouts through Redis, and the security headers on every answer."""

import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token

from tests.factories import PASSWORD
from tests.workers import BROKER_URL, database_url

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MANAGE = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
HTTPS = {"X-Forwarded-Proto": "https", "Host": "127.0.0.1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_env(tmp_path: Path, media_in_tmp: Path) -> dict[str, str]:
    from django.db import connection

    if not BROKER_URL or connection.vendor != "postgresql":
        pytest.skip("needs CELERY_BROKER_URL and DATABASE_URL (PostgreSQL): run the README's test command")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_MEDIA_ROOT": str(media_in_tmp),
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER_URL,
        "REDIS_CACHE_URL": BROKER_URL,
        "API_THROTTLE_RATE": "6/minute",
    }


@pytest.fixture
def gunicorn(production_env: dict[str, str], tmp_path: Path):
    collect = subprocess.run(
        [*MANAGE, "collectstatic", "--noinput"], env=production_env, capture_output=True, text=True
    )
    assert collect.returncode == 0, collect.stderr
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        env=production_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def request(port: int, method: str, path: str, *, headers: dict | None = None, body: str | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, body=body, headers={**HTTPS, **(headers or {})})
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_the_deploy_check_passes_clean_in_production_mode(production_env):
    check = subprocess.run(
        [*MANAGE, "check", "--deploy", "--fail-level", "WARNING"], env=production_env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout


def test_production_refuses_to_start_without_a_secret_key_or_a_shared_cache(production_env):
    for missing in ("DJANGO_SECRET_KEY", "REDIS_CACHE_URL"):
        env = {k: v for k, v in production_env.items() if k != missing}
        check = subprocess.run([*MANAGE, "check"], env=env, capture_output=True, text=True)
        assert check.returncode != 0 and missing in check.stderr


def test_gunicorn_serves_pages_and_collected_static_files_with_the_security_headers(gunicorn, contributor):
    status, headers, body = request(gunicorn, "GET", "/login/")
    assert status == 200
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert {"private", "no-store"} <= {p.strip() for p in headers["cache-control"].split(",")}
    assert "secure" in headers["set-cookie"].lower()
    stylesheet = re.search(rb'href="(/static/css/portal\.[0-9a-f]+\.css)"', body).group(1).decode()
    status, headers, _ = request(gunicorn, "GET", stylesheet)
    assert status == 200 and "max-age" in headers["cache-control"]

    status, headers, _ = request(gunicorn, "GET", "/login/", headers={"X-Forwarded-Proto": "http"})
    assert status == 301 and headers["location"].startswith("https://")


def test_two_gunicorn_workers_share_one_throttle_and_one_lockout(gunicorn, contributor):
    token = Token.objects.create(user=contributor)
    codes = [
        request(gunicorn, "GET", "/api/submissions/", headers={"Authorization": f"Token {token.key}"})[0]
        for _ in range(10)
    ]
    assert codes == [200] * 6 + [429] * 4  # per process, two workers would have let up to 12 through

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(settings.AXES_FAILURE_LIMIT):
        request(gunicorn, "POST", "/api/auth/token/", headers=form, body=f"username={contributor.username}&password=x")
    status, _, body = request(
        gunicorn, "POST", "/api/auth/token/", headers=form, body=f"username={contributor.username}&password={PASSWORD}"
    )
    assert status in (400, 429) and b"token" not in body


@pytest.fixture
def roomy_throttle(production_env: dict[str, str]) -> None:
    # Asked for before `gunicorn`, so the server starts with it: this test counts answers, not throttles.
    production_env["API_THROTTLE_RATE"] = "1000/minute"


@pytest.mark.faults
def test_after_the_database_drops_every_connection_the_next_requests_answer_normally(
    roomy_throttle, gunicorn, contributor
):
    from django.db import connection

    token = {"Authorization": f"Token {Token.objects.create(user=contributor).key}"}
    # Enough requests that both workers hold a persistent connection (DB_CONN_MAX_AGE) to lose.
    assert {request(gunicorn, "GET", "/api/submissions/", headers=token)[0] for _ in range(8)} == {200}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1  # what a restart does to every web process's connection

    codes = [request(gunicorn, "GET", "/api/submissions/", headers=token)[0] for _ in range(8)]
    codes += [request(gunicorn, "GET", "/login/")[0] for _ in range(4)]
    assert set(codes) == {200}, codes
