"""The bare pipelines exist only as bench entry points, and those refuse to run with DJANGO_SECURE on."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from bench.bare import bare_mediator

ROOT = Path(__file__).resolve().parents[2]


def test_the_bare_mediator_is_refused_with_django_secure_on(settings):
    settings.SECURE = True

    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECURE"):
        bare_mediator()


def test_the_bare_mediator_keeps_only_the_result_mapper(settings):
    settings.SECURE = False

    assert bare_mediator().middlewares == ()


def test_the_bare_web_entry_point_refuses_to_start_with_django_secure_on():
    env = {
        **os.environ,
        "DJANGO_SECURE": "true",
        "DJANGO_SECRET_KEY": "a-secret-for-this-test-only-0123456789abcdef",
        "DJANGO_ALLOWED_HOSTS": "localhost",
    }

    started = subprocess.run(
        [sys.executable, "-c", "import bench.bare_wsgi"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert started.returncode != 0
    assert "refused with DJANGO_SECURE on" in started.stderr


def test_production_settings_have_no_pipeline_switches(settings):
    assert not hasattr(settings, "COMMAND_PIPELINE")
    assert not hasattr(settings, "QUERY_PIPELINE")
