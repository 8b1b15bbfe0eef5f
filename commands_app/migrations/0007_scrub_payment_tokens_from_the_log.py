"""Scrub the payment tokens that OrderPlaced version 1 carried out of every stored copy of those events.

The v1 -> v2 upcaster (commands_app/events.py) already keeps the token from every reader; this removes it from
the rows themselves, so no dump or backup taken from now on holds one. Each OrderPlaced v1 in the log loses its
`payment_token` and gains the order's `payment_reference` (write_order, given by migration 0005); the row stays
at version 1 (the upcaster still makes it v2 for readers). The archive of old events is scrubbed too, where the
migration state has it. The same for the
copies outside the log: parked projection events and webhook delivery bodies. A data migration (not a management command) so that no deploy can
leave the secrets waiting for an operator; idempotent, not atomic, in batches of 1,000 rows, each its own
transaction, so no lock is held long on the outbox (docs/events.md, "OrderPlaced v1 and its payment tokens").
"""

import json

from django.db import migrations, transaction

BATCH = 1000
UNRECORDED = "pm_unrecorded"


def _references(apps, alias, order_ids):
    OrderRecord = apps.get_model("commands_app", "OrderRecord")
    found = OrderRecord.objects.using(alias).filter(order_id__in=order_ids)
    return {str(order_id): reference for order_id, reference in found.values_list("order_id", "payment_reference")}


def _scrubbed(payload, reference):
    payload = {name: value for name, value in payload.items() if name != "payment_token"}
    payload.setdefault("payment_reference", reference or UNRECORDED)
    return payload


# The log's tables: the live outbox, and the archive of old events where the migration state has it.
LOG_MODELS = ("OutboxEvent", "ArchivedEvent")


def scrub_log(apps, alias):
    for name in LOG_MODELS:
        try:
            model = apps.get_model("outbox_app", name)
        except LookupError:
            continue
        _scrub_events(apps, alias, model)


def _scrub_events(apps, alias, model):
    holding = model.objects.using(alias).filter(
        event_type="OrderPlaced", schema_version=1, payload__has_key="payment_token"
    )
    while True:
        with transaction.atomic(using=alias):
            rows = list(holding.order_by("event_id")[:BATCH].select_for_update())
            if not rows:
                return
            references = _references(apps, alias, [row.aggregate_id for row in rows])
            for row in rows:
                row.payload = _scrubbed(row.payload, references.get(row.aggregate_id))
            model.objects.using(alias).bulk_update(rows, ["payload"])


def scrub_parked_events(apps, alias):
    ParkedEvent = apps.get_model("queries_app", "ParkedEvent")
    holding = ParkedEvent.objects.using(alias).filter(event_type="OrderPlaced", envelope__payload__has_key="payment_token")
    while True:
        with transaction.atomic(using=alias):
            rows = list(holding.order_by("pk")[:BATCH].select_for_update())
            if not rows:
                return
            references = _references(apps, alias, [row.aggregate_id for row in rows])
            for row in rows:
                row.envelope = {**row.envelope, "payload": _scrubbed(row.envelope["payload"], references.get(row.aggregate_id))}
            ParkedEvent.objects.using(alias).bulk_update(rows, ["envelope"])


def scrub_webhook_bodies(apps, alias):
    WebhookDelivery = apps.get_model("webhooks_app", "WebhookDelivery")
    holding = WebhookDelivery.objects.using(alias).filter(event_type="OrderPlaced", body__contains='"payment_token"')
    while True:
        with transaction.atomic(using=alias):
            rows = list(holding.order_by("pk")[:BATCH].select_for_update())
            if not rows:
                return
            for row in rows:
                message = json.loads(row.body)
                data = message["data"]
                references = _references(apps, alias, [data["aggregate_id"]])
                data["payload"] = _scrubbed(data["payload"], references.get(data["aggregate_id"]))
                row.body = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
            WebhookDelivery.objects.using(alias).bulk_update(rows, ["body"])


def scrub(apps, schema_editor):
    alias = schema_editor.connection.alias
    scrub_log(apps, alias)
    scrub_parked_events(apps, alias)
    scrub_webhook_bodies(apps, alias)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("commands_app", "0006_customer_keys"),
        ("outbox_app", "0004_archive"),
        ("queries_app", "0003_read_model_and_inbox_names"),
        ("webhooks_app", "0001_initial"),
    ]

    operations = [migrations.RunPython(scrub, migrations.RunPython.noop, elidable=False)]
