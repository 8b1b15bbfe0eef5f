"""The import-linter contracts hold, and they do fail when a forbidden import is added."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "config",
    "api_common",
    "outbox_app",
    "commands_app",
    "queries_app",
    "sagas_app",
    "operations_app",
    "observability",
    "webhooks_app",
]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(cwd)}
    )


@pytest.fixture
def copy_of_the_project(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold_on_the_project():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden_import", "contract"),
    [
        ("commands_app/handlers/register_customer.py", "import queries_app.models", "never import each other"),
        ("queries_app/projections/customers.py", "import commands_app.events", "never import each other"),
        ("outbox_app/relay.py", "import queries_app.tasks", "imports none of the other apps"),
        ("sagas_app/apps.py", "import commands_app.models", "only through the mediator"),
        ("commands_app/domain/customer.py", "import django.db", "plain Python"),
        ("queries_app/tasks.py", "import config.settings", "config.settings"),
        ("observability/tracing.py", "import outbox_app.models", "imports none of them"),
        ("sagas_app/tasks.py", "import operations_app.status", "no app depends on them"),
        ("webhooks_app/deliveries.py", "import commands_app.events", "import no producer"),
        ("outbox_app/log.py", "import webhooks_app.models", "imports none of the other apps"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(copy_of_the_project, module, forbidden_import, contract):
    # given
    path = copy_of_the_project / module
    path.write_text(path.read_text() + f"\n{forbidden_import}  # added by the test\n")

    # when
    result = lint_imports(copy_of_the_project)

    # then
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken) or contract in result.stdout, result.stdout
