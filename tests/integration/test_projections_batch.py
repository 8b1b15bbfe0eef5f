"""The batch path: a message's events applied per projection in one transaction keep every guarantee."""

import random
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from queries_app import best_sellers
from queries_app.envelopes import Envelope
from queries_app.models import CustomerReadModel, InboxEntry, OrderReadModel, ParkedEvent, ProjectionCheckpoint
from queries_app.projection_engine import apply
from queries_app.projection_engine.apply import project
from queries_app.projection_engine.replay import verify
from queries_app.projections import BY_NAME, PROJECTIONS
from tests.streams import CustomerStream, OrderStream, ProductStream, line, write_to_log


def applied(projection: str) -> int:
    checkpoint = ProjectionCheckpoint.objects.filter(projection=projection).first()
    return checkpoint.events_applied if checkpoint else 0


def project_logged(*envelopes: Envelope) -> list[Envelope]:
    logged = write_to_log(envelopes)
    project(logged)
    return logged


def no_drift() -> dict[str, list[str]]:
    return {projection.name: verify(projection) for projection in PROJECTIONS}


@pytest.mark.django_db
def test_one_message_mixing_duplicates_out_of_order_versions_a_gap_and_a_poison_event():
    # given: Ada and Cy registered and projected; the log holds what follows, Cy's second version included
    ada, bob, cy = CustomerStream(), CustomerStream(), CustomerStream()
    ada_registered, _ = project_logged(
        ada.registered("Ada", "Lovelace", "ada@example.org"), cy.registered("Cy", "Young", "cy.young@example.org")
    )
    poisoned = OrderStream(customer_id=bob.customer_id).placed(line("TEA", 1, "3.00"))
    poisoned["payload"]["total"] = "ten euros"
    good = OrderStream(customer_id=ada.customer_id)
    ada_v2, ada_v3, bob_v1, bob_v2, _, cy_v3, poisoned, good_placed, good_confirmed = write_to_log(
        [
            ada.email_changed("ada2@example.org"),
            ada.email_changed("ada3@example.org"),
            bob.registered("Bob", "Babbage", "bob@example.org"),
            bob.email_changed("bob2@example.org"),
            cy.email_changed("cy2@example.org"),
            cy.email_changed("cy3@example.org"),
            poisoned,
            good.placed(line("CUP", 2, "5.00")),
            good.confirmed(),
        ]
    )

    # when: one message, Cy's second version missing from it
    run = project(
        [ada_v3, ada_registered, good_confirmed, ada_v2, bob_v2, poisoned, bob_v1, bob_v2, cy_v3, good_placed]
    )

    # then: customers 7 applied, orders 6 (the poison fails there), best sellers 3; 2 duplicates in each
    assert (run.applied, run.duplicates) == (7 + 6 + 3, 2 + 2)
    assert sorted((p.projection, p.envelope["event_id"], p.reason) for p in run.pending) == sorted(
        [
            ("customers", cy_v3["event_id"], "gap"),
            ("orders", cy_v3["event_id"], "gap"),
            ("orders", poisoned["event_id"], "failed"),
        ]
    )
    emails = {str(key): email for key, email in CustomerReadModel.objects.values_list("customer_id", "email")}
    assert [emails[s.customer_id] for s in (ada, bob, cy)] == [
        "ada3@example.org",
        "bob2@example.org",
        "cy.young@example.org",
    ]
    assert CustomerReadModel.objects.get(customer_id=bob.customer_id).orders_count == 1  # customers read no total
    order = OrderReadModel.objects.get()
    assert (order.status, order.customer_email) == ("confirmed", "ada3@example.org")
    assert best_sellers.top(10) == [("CUP", 2)]
    for name, count in {"customers": 2 + 7, "orders": 2 + 6, "best_sellers": 3}.items():
        assert applied(name) == count
        assert InboxEntry.objects.filter(projection=name).count() == count
    assert no_drift() == {projection.name: [] for projection in PROJECTIONS}


@pytest.mark.django_db
def test_a_projection_applies_a_message_in_as_many_statements_whatever_its_size():
    def statements(customers: int) -> int:
        streams = [CustomerStream() for _ in range(customers)]
        events = [s.registered() for s in streams] + [s.email_changed(f"new.{s.customer_id}@x.org") for s in streams]
        with CaptureQueriesContext(connection) as queries:
            run = project(events, projections=[BY_NAME["customers"]])
        assert run.applied == 2 * customers
        return len(queries)

    # given: the checkpoint exists
    statements(1)

    # when
    few, many = statements(3), statements(60)

    # then
    assert few == many


@pytest.mark.django_db
def test_text_reaches_the_read_tables_as_it_was_whatever_its_characters():
    # given: names JSON and SQL would escape, and characters beyond ASCII
    zoe = CustomerStream()
    first, last, email = 'Zoë "Z" 😀', "O'Brien \\ {x,y} NULL", "zoë@exämple.org"

    # when
    project_logged(zoe.registered(first, last, email))

    # then
    assert CustomerReadModel.objects.values_list("first_name", "last_name", "email").get() == (first, last, email)
    assert no_drift() == {projection.name: [] for projection in PROJECTIONS}


def deliveries(events: list[Envelope], seed: int, size: int) -> list[list[Envelope]]:
    """Every event, shuffled, in messages of `size`: as a worker would see another relay's batches."""
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    return [shuffled[start : start + size] for start in range(0, len(shuffled), size)]


def a_busy_log() -> list[Envelope]:
    customers = [CustomerStream() for _ in range(4)]
    products = [ProductStream() for _ in range(3)]
    events = [c.registered() for c in customers] + [p.added(stock=100) for p in products]
    for round_ in range(8):
        for index, customer in enumerate(customers):
            events.append(customer.email_changed(f"c{index}.r{round_}@example.org"))
            order = OrderStream(customer_id=customer.customer_id)
            sku = products[(index + round_) % len(products)].sku
            events += [order.placed(line(sku, 1 + round_, "2.50")), order.payment_authorized()]
            events.append(order.confirmed() if index % 3 else order.cancelled("customer_request"))
        for product in products:
            events.append(product.restocked(5, 100 + 5 * (round_ + 1), 100))
    return write_to_log(events)


@pytest.mark.django_db(transaction=True)
def test_workers_applying_overlapping_messages_at_once_apply_each_event_once():
    # given: three workers, each handed every event of the log in its own order and messages
    events = a_busy_log()
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            pending: list[Envelope] = []
            for message in deliveries(events, seed, size=7):
                pending += project(message).pending_envelopes
            for _ in range(10):  # the task's retries of what waited on a gap
                if not pending:
                    break
                pending = project(pending).pending_envelopes
            assert not pending
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: no deadlock, nothing parked, each event applied once by each projection that follows it
    assert errors == []
    assert not ParkedEvent.objects.exists()
    for projection in PROJECTIONS:
        followed = sum(e["aggregate_type"] in projection.follows for e in events)
        assert applied(projection.name) == followed
        assert InboxEntry.objects.filter(projection=projection.name).count() == followed
    assert no_drift() == {projection.name: [] for projection in PROJECTIONS}


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_found_a_row_missing_which_another_worker_then_created_applies_again(monkeypatch):
    # given: Ada's registration and a message of it; while the orders projection applies that message (Ada's copy
    # missing, so not locked), another worker places an order of hers, creating the copy, and commits
    ada = CustomerStream()
    registered, placed = write_to_log(
        [
            ada.registered("Ada", "Lovelace", "ada@example.org"),
            OrderStream(customer_id=ada.customer_id).placed(line("TEA", 1, "3.00")),
        ]
    )
    orders = BY_NAME["orders"]
    handlers_of = orders.apply
    interrupted: list[Envelope] = []

    def another_worker() -> None:
        try:
            project([placed], projections=[orders])
        finally:
            connection.close()

    def apply_after_another_worker(ctx, envelope):
        if not interrupted:
            interrupted.append(envelope)
            thread = threading.Thread(target=another_worker)
            thread.start()
            thread.join()
        handlers_of(ctx, envelope)

    monkeypatch.setattr(orders, "apply", apply_after_another_worker)
    one_by_one: list[Envelope] = []
    monkeypatch.setattr(apply, "_project_one", lambda projection, envelope, run: one_by_one.append(envelope))

    # when
    run = project([registered], projections=[orders])

    # then: the batch applied again, as a batch, and the order carries Ada's name (the first attempt, which
    # listed no order of hers, did not commit)
    assert (interrupted, one_by_one, run.applied) == ([registered], [], 1)
    assert OrderReadModel.objects.get().customer_email == "ada@example.org"
    assert applied("orders") == 2
    assert verify(orders) == []
