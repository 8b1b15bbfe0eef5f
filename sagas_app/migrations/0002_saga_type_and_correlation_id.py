# Sagas keyed by type and correlation id (issue 19). Lock-friendly, in three migrations (expand, then contract):
# this one adds the column with a constant default (a catalog change on PostgreSQL 11+), then fills it in batches
# of their own transactions (the fulfilment saga's rows: type "fulfilment", correlation id = the order id);
# 0003 builds the unique index concurrently; 0004 drops the old order_id column.

from django.db import migrations, models, transaction
from django.db.migrations.exceptions import IrreversibleError

BATCH = 1000


def fill_correlation_ids(apps, schema_editor):
    Saga = apps.get_model("sagas_app", "Saga")
    db = schema_editor.connection.alias
    while True:
        with transaction.atomic(using=db):
            rows = list(
                Saga.objects.using(db)
                .select_for_update(skip_locked=True)
                .filter(correlation_id="", order_id__isnull=False)
                .only("saga_id", "order_id")[:BATCH]
            )
            if not rows:
                return
            for saga in rows:
                saga.saga_type = "fulfilment"
                saga.correlation_id = str(saga.order_id)
            Saga.objects.using(db).bulk_update(rows, ["saga_type", "correlation_id"])


def fill_order_ids(apps, schema_editor):
    """Backwards: the fulfilment sagas get their order id back; a saga of another type cannot be kept."""
    Saga = apps.get_model("sagas_app", "Saga")
    db = schema_editor.connection.alias
    if Saga.objects.using(db).exclude(saga_type="fulfilment").exists():
        raise IrreversibleError("Sagas of types other than fulfilment have no order id.")
    while True:
        with transaction.atomic(using=db):
            rows = list(Saga.objects.using(db).filter(order_id__isnull=True).only("saga_id", "correlation_id")[:BATCH])
            if not rows:
                return
            for saga in rows:
                saga.order_id = saga.correlation_id
            Saga.objects.using(db).bulk_update(rows, ["order_id"])


class Migration(migrations.Migration):
    # squawk (tests/architecture/test_migrations_lint.py): the rules this migration breaks on purpose, and why.
    squawk_allowed = {
        "require-lock-timeout": (
            "a non-atomic migration (its backfill commits batch by batch), where SET LOCAL cannot bound a lock; each statement is a catalog change on one table, and the saga table is written by the sagas worker only"
        ),
        "require-statement-timeout": (
            "a non-atomic migration (its backfill commits batch by batch), where SET LOCAL cannot bound a lock; each statement is a catalog change on one table, and the saga table is written by the sagas worker only"
        ),
        "ban-drop-default": (
            "the empty default exists only so ADD COLUMN fills the existing rows (a catalog-only default since PostgreSQL 11); every writer of this code sets correlation_id, and the backfill runs next"
        ),
        "ban-drop-not-null": (
            "order_id becomes optional so the code from before this migration keeps writing it until 0004 drops it; no reader of either version meets a null it cannot handle"
        ),
        "prefer-robust-stmts": (
            "Django records the migration only when every operation ran; a run stopped halfway is finished by hand (docs/operations.md), each step being a catalog change"
        ),
        "require-concurrent-index-deletion": (
            "the dropped index is order_id's LIKE index, a catalog change waited for a moment; no query of either version uses it"
        ),
    }

    atomic = False

    dependencies = [
        ("sagas_app", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="saga",
            name="correlation_id",
            field=models.CharField(
                default="", help_text="What it is about, for its type: the order id.", max_length=200
            ),
            preserve_default=False,
        ),
        # The old code's rows keep working until 0004: order_id stays, no longer required nor unique.
        migrations.AlterField(
            model_name="saga",
            name="order_id",
            field=models.UUIDField(null=True, blank=True),
        ),
        migrations.RunPython(fill_correlation_ids, fill_order_ids, elidable=True),
        migrations.AlterField(
            model_name="saga",
            name="saga_type",
            field=models.CharField(help_text="Its definition (sagas_app.definitions).", max_length=50),
        ),
        migrations.AlterField(
            model_name="saga",
            name="outcome",
            field=models.CharField(
                blank=True, help_text="Its definition's: confirmed or cancelled, say.", max_length=20
            ),
        ),
    ]
