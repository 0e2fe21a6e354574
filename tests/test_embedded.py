"""The one-command default: SQLite, local media, tasks in-process. The suite itself runs on PostgreSQL."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def test_the_embedded_default_migrates_and_creates_demo_accounts_on_sqlite(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
    migrate = subprocess.run([*manage, "migrate", "--noinput"], env=env, capture_output=True, text=True)
    assert migrate.returncode == 0, migrate.stderr
    demo = subprocess.run([*manage, "portal_demo"], env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert [line.split()[0] for line in demo.stdout.splitlines()] == ["contributor", "moderator", "admin"]
