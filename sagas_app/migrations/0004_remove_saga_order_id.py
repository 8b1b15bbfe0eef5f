# The contract step: sagas are keyed by (saga_type, correlation_id) since 0002/0003, and no code reads order_id.
# Dropping a column is a catalog change on PostgreSQL (a brief ACCESS EXCLUSIVE lock, no rewrite); deploy it once
# no process runs the code from before 0002.

from django.db import migrations

from sqlkit.migrations import bounded_locks


class Migration(migrations.Migration):
    # squawk (tests/architecture/test_migrations_lint.py): the rules this migration breaks on purpose, and why.
    squawk_allowed = {
        "ban-drop-column": (
            "no code reads or writes order_id since 0002 (sagas are keyed by saga_type and correlation_id); deploy once no process runs the code from before 0002"
        ),
    }


    dependencies = [
        ("sagas_app", "0003_saga_type_correlation_unique"),
    ]

    operations = [
        bounded_locks(),
        migrations.RemoveField(
            model_name="saga",
            name="order_id",
        ),
    ]
