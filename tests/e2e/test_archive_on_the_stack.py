"""Everything archived on the real stack (a worker, beat): commands go on, the feed pages through the archive,
and replay + verify rebuild read models identical to the live ones."""

import pytest
from django.core.management import call_command

from api_common.consistency import HEADER
from outbox_app.models import ArchivedEvent, OutboxEvent
from queries_app.lag import lag
from queries_app.projections import PROJECTIONS
from tests.conftest import command, eventually
from tests.integration.test_replay_projections import snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stack]


def confirmed_order(shop, name: str, quantity: int) -> tuple[str, str]:
    sku = f"ARCH-{name}"
    product = {"sku": sku, "name": name, "description": "", "price": "12.50", "stock": 50}
    assert command(shop, "add-product", product).status_code == 201
    customer = command(shop, "register-customer", {"first_name": name, "last_name": "L", "email": f"{sku}@x.org"})
    customer_id = customer.json()["customer_id"]
    placed = command(
        shop,
        "place-order",
        {"customer_id": customer_id, "lines": [{"sku": sku, "quantity": quantity}], "payment_token": "tok_ok"},
    )
    assert placed.status_code == 202, placed.json()
    order_id = placed.json()["order_id"]
    eventually(lambda: (shop.get(f"/api/orders/{order_id}").json() or {}).get("status") == "confirmed", timeout=30)
    return customer_id, order_id


def caught_up() -> bool:
    return not OutboxEvent.objects.pending().exists() and all(lag(p).events_behind == 0 for p in PROJECTIONS)


def test_after_archiving_everything_commands_go_on_and_the_read_models_rebuild_identical(celery_stack, make_api_client):
    shop = make_api_client("read", "write", "catalog")
    # given: business done and projected, then every published event archived
    ada_id, _ = confirmed_order(shop, "Ada", 2)
    eventually(caught_up, timeout=30)
    call_command("prune_outbox", "--older-than", "0")
    archived = ArchivedEvent.objects.count()
    assert archived > 0 and not OutboxEvent.objects.published().exists()

    # when: commands go on, on aggregates whose history is all archived and on new ones
    changed = command(shop, "change-customer-email", {"customer_id": ada_id, "email": "countess@x.org"})
    assert changed.status_code == 200, changed.json()
    mine = shop.get(f"/api/customers/{ada_id}", HTTP_X_CONSISTENCY_TOKEN=changed[HEADER])
    confirmed_order(shop, "Grace", 3)
    eventually(caught_up, timeout=30)

    # then: read-your-writes still works, and the positions of the log go on after the archived ones
    assert (mine.status_code, mine.json()["email"], mine.json()["version"]) == (200, "countess@x.org", 2)
    archived_head = max(ArchivedEvent.objects.values_list("log_position", flat=True))
    assert min(OutboxEvent.objects.published().values_list("log_position", flat=True)) == archived_head + 1
    ranked = shop.get("/api/products/best-sellers").json()["results"]
    assert [(r["sku"], r["units_sold"]) for r in ranked] == [("ARCH-Grace", 3), ("ARCH-Ada", 2)]

    # and the feed pages through the archive and the outbox, every event once, in log order
    seen, after = [], ""
    while True:
        page = shop.get(f"/api/events?limit=4{'&after=' + after if after else ''}").json()
        seen += [e["event_id"] for e in page["events"]]
        after = page["next_after"]
        if not page["has_more"]:
            break
    logged = OutboxEvent.objects.published().count() + archived
    assert len(seen) == len(set(seen)) == logged

    # when: every read model is rebuilt from the log, most of it archived
    expected = snapshot()
    call_command("replay_projections")

    # then: identical, and verify agrees
    assert snapshot() == expected
    call_command("verify_projections")
