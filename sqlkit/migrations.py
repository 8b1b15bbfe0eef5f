"""Migration operations for a service that keeps serving while it migrates (PostgreSQL; no-ops elsewhere).

squawk lints every migration's SQL (tests/architecture/test_migrations_lint.py); docs/operations.md, "Migrations
that do not stop the service", says which operation to use for what.
"""

from typing import Any

from django.db import migrations


class PostgreSQLOnly(migrations.RunSQL):
    """Raw SQL run on PostgreSQL only: settings and statements the embedded SQLite has no use for."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def bounded_locks(*, lock_timeout: str = "5s", statement_timeout: str = "60s") -> PostgreSQLOnly:
    """The first operation of an atomic migration: a lock it would wait for longer than `lock_timeout` fails the
    migration (run it again later) instead of queueing every query of the service behind its waiting ALTER, and no
    statement runs longer than `statement_timeout`. SET LOCAL: both end with the migration's transaction."""
    settings = f"SET LOCAL lock_timeout = '{lock_timeout}'; SET LOCAL statement_timeout = '{statement_timeout}';"
    return PostgreSQLOnly(settings, reverse_sql=settings)
