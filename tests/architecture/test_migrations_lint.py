"""squawk lints the SQL of every migration of the project's apps, as `manage.py sqlmigrate` prints it for PostgreSQL.

A migration that breaks a rule on purpose names it, with the reason, in `squawk_allowed` on its Migration class;
the rules off for the whole project are in .squawk.toml, each with its reason. An exception a migration no longer
needs fails too, so the list stays true. docs/operations.md, "Migrations that do not stop the service".
"""

import json
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

ROOT = Path(__file__).resolve().parents[2]
SQUAWK = shutil.which("squawk") or str(ROOT / ".venv" / "bin" / "squawk")

pytestmark = pytest.mark.django_db


def project_migrations() -> list[tuple[str, str, object]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found = []
    for (app, name), migration in loader.disk_migrations.items():
        module = Path(__import__(migration.__module__, fromlist=["_"]).__file__ or "")
        if ROOT in module.parents and ".venv" not in module.parts:
            found.append((app, name, migration))
    return sorted(found, key=lambda item: (item[0], item[1]))


def rules_broken(sql: str, path: Path) -> set[str]:
    path.write_text(sql)
    linted = subprocess.run(
        [SQUAWK, "--reporter", "json", str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert linted.returncode in (0, 1), linted.stderr
    return {violation["rule_name"] for violation in json.loads(linted.stdout or "[]")}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="squawk lints PostgreSQL's SQL")
def test_every_migration_passes_squawk_or_names_each_rule_it_breaks(tmp_path):
    migrations = project_migrations()
    assert len(migrations) > 10
    problems = []
    for app, name, migration in migrations:
        out = StringIO()
        call_command("sqlmigrate", app, name, stdout=out)
        broken = rules_broken(out.getvalue(), tmp_path / f"{app}_{name}.sql")
        allowed: dict[str, str] = getattr(migration, "squawk_allowed", {})
        problems += [
            f"{app}.{name}: breaks {rule} (fix it, or name it in squawk_allowed)" for rule in broken - set(allowed)
        ]
        problems += [
            f"{app}.{name}: squawk_allowed names {rule}, which it does not break" for rule in set(allowed) - broken
        ]
        problems += [f"{app}.{name}: no reason given for {rule}" for rule, why in allowed.items() if len(why) < 20]
    assert problems == []


def test_squawk_flags_an_index_built_without_concurrently_on_an_existing_table(tmp_path):
    # the lint can fail: a plain CREATE INDEX on a table it did not create is flagged
    sql = "SET lock_timeout = '5s'; SET statement_timeout = '60s';\nCREATE INDEX inbox_at ON read_inbox (processed_at);"
    assert "require-concurrent-index-creation" in rules_broken(sql, tmp_path / "probe.sql")
