"""The image holds the service and nothing else: no tests, benchmarks, virtualenv, local state or git history.

The build context is computed by docker-py (which Debian's docker-compose brings) from .dockerignore, as a build
would send it; there is no Docker engine here to build the image itself.
"""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"  # docker-compose's interpreter, with docker-py
CONTEXT = """
import json, sys
from docker.utils.build import exclude_paths
patterns = [line.strip() for line in open(".dockerignore") if line.strip() and not line.startswith("#")]
json.dump(sorted(exclude_paths(".", patterns)), sys.stdout)
"""


@pytest.fixture(scope="module")
def build_context() -> set[str]:
    found = subprocess.run([SYSTEM_PYTHON, "-c", "import docker"], capture_output=True)
    if found.returncode:
        pytest.skip("docker-py is not installed (.ci/run installs docker-compose, which brings it)")
    listed = subprocess.run([SYSTEM_PYTHON, "-c", CONTEXT], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(listed.stdout))


def test_the_image_ships_no_tests_benchmarks_or_local_state(build_context):
    kept_out = ("tests", "bench", ".venv", "var", ".git", "docs")
    assert not [path for path in build_context if path.split("/")[0] in kept_out]
    assert not [path for path in build_context if "__pycache__" in path]


def test_the_image_has_what_the_processes_run(build_context):
    needed = {"manage.py", "config/settings.py", "config/gunicorn.py", "requirements/production.txt"}
    apps = {"api_common", "commands_app", "queries_app", "sagas_app", "outbox_app", "operations_app", "observability"}
    assert needed <= build_context
    assert {f"{app}/__init__.py" for app in apps} <= build_context
