from django.db import migrations, models


class Migration(migrations.Migration):
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
