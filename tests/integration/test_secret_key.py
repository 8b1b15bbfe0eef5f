"""The secret key: the production configuration refuses to start without one; the embedded default makes its own.

Each case starts the service's real entry points as processes, with the environment an operator would give them.
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack import ROOT

SERVICES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY")
PRINT_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def environment(tmp_path: Path, **values: str) -> dict[str, str]:
    clean = {name: value for name, value in os.environ.items() if name not in SERVICES}
    return {**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DATA_DIR": str(tmp_path), **values}


@pytest.mark.parametrize(
    "entry_point",
    [
        ["manage.py", "check", "--deploy"],
        ["-c", "import config.wsgi"],  # what gunicorn loads
        ["-m", "celery", "-A", "config", "inspect", "ping"],
    ],
    ids=["check --deploy", "wsgi", "celery"],
)
def test_with_a_database_url_and_no_secret_key_the_service_refuses_to_start(entry_point, tmp_path):
    # given: the production configuration without DJANGO_SECRET_KEY (the database need not even answer)
    env = environment(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere")

    # when
    run = subprocess.run([sys.executable, *entry_point], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    # then: it stops with an error that names the variable, and generates no key of its own
    assert run.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in run.stderr
    assert not (tmp_path / "secret_key").exists()


def test_the_embedded_default_generates_one_key_and_keeps_it_for_its_owner(tmp_path):
    # given: no service variables at all
    env = environment(tmp_path)

    # when: two starts
    first, second = (
        subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {PRINT_KEY}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    )

    # then: a long random key, kept between starts, in a file only its owner can read
    key_file = tmp_path / "secret_key"
    assert first == second == key_file.read_text().strip()
    assert len(first) >= 50 and "insecure" not in first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
