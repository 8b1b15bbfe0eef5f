# The contract step: sagas are keyed by (saga_type, correlation_id) since 0002/0003, and no code reads order_id.
# Dropping a column is a catalog change on PostgreSQL (a brief ACCESS EXCLUSIVE lock, no rewrite); deploy it once
# no process runs the code from before 0002.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("sagas_app", "0003_saga_type_correlation_unique"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="saga",
            name="order_id",
        ),
    ]
