"""PaymentRefunded became PaymentVoided (schema version 2): the orders' payment status `refunded` is `voided`.

Not atomic, in batches of 5,000 rows, each its own transaction: no long lock on a large read_order. A projection
that applies a PaymentVoided meanwhile writes `voided` itself; a replay rebuilds the same.
"""

from django.db import migrations, models, transaction

BATCH = 5000


def refunded_to_voided(apps, schema_editor):
    OrderReadModel = apps.get_model("queries_app", "OrderReadModel")
    orders = OrderReadModel.objects.using(schema_editor.connection.alias)
    while True:
        with transaction.atomic(using=schema_editor.connection.alias):
            batch = list(orders.filter(payment_status="refunded").values_list("order_id", flat=True)[:BATCH])
            if not batch:
                return
            orders.filter(order_id__in=batch).update(payment_status="voided")


def voided_to_refunded(apps, schema_editor):
    OrderReadModel = apps.get_model("queries_app", "OrderReadModel")
    OrderReadModel.objects.using(schema_editor.connection.alias).filter(payment_status="voided").update(
        payment_status="refunded"
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("queries_app", "0004_widen_lifetime_value"),
    ]

    operations = [
        # Choices only: no change to the column.
        migrations.AlterField(
            model_name="orderreadmodel",
            name="payment_status",
            field=models.CharField(
                choices=[("none", "None"), ("authorized", "Authorized"), ("declined", "Declined"), ("voided", "Voided")],
                default="none",
                max_length=20,
            ),
        ),
        migrations.RunPython(refunded_to_voided, voided_to_refunded),
    ]
