from django.db import migrations, models


class Migration(migrations.Migration):
    # squawk (tests/architecture/test_migrations_lint.py): the rules this migration breaks, and why.
    squawk_allowed = {
        'require-lock-timeout': 'applied before migrations were linted or set lock_timeout (sqlkit.migrations.bounded_locks); a nullable column without a default: catalog only',
        'require-statement-timeout': 'applied before migrations were linted or set statement_timeout (bounded_locks); a nullable column without a default: catalog only',
    }

    dependencies = [
        ("api_common", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apiclient",
            name="rate_limit_per_minute",
            field=models.PositiveIntegerField(
                blank=True, help_text="Requests per minute; empty means API_RATE_LIMIT_PER_MINUTE.", null=True
            ),
        ),
    ]
