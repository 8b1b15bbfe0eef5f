"""Replay rebuilds every read model from the event log and swaps it in; verify finds every drifting row."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from outbox_app.models import OutboxEvent
from queries_app import best_sellers
from queries_app.models import (
    AggregatePosition,
    BestSeller,
    CustomerReadModel,
    OrderCustomer,
    OrderReadModel,
    ProductReadModel,
    ProjectionCheckpoint,
)
from queries_app.projection_engine.apply import project
from queries_app.projection_engine.replay import passes, replay
from queries_app.projections import BY_NAME
from tests.streams import CustomerStream, OrderStream, ProductStream, line, write_to_log

ROOT = Path(__file__).resolve().parents[2]
READ_MODELS = (CustomerReadModel, OrderCustomer, OrderReadModel, ProductReadModel, BestSeller)


def a_day_of_business() -> list:
    ada, grace = CustomerStream(), CustomerStream()
    teapot, cup = ProductStream(), ProductStream()
    paid, declined = OrderStream(customer_id=ada.customer_id), OrderStream(customer_id=grace.customer_id)
    return [
        ada.registered("Ada", "Lovelace", "ada@example.org"),
        grace.registered("Grace", "Hopper", "grace@example.org"),
        teapot.added("Teapot", "Porcelain", "19.90", stock=10),
        cup.added("Cup", "Stoneware", "5.00", stock=20),
        paid.placed(line(teapot.sku, 2, "19.90"), line(cup.sku, 3, "5.00")),
        teapot.reserved(paid.order_id, 2, available=8),
        cup.reserved(paid.order_id, 3, available=17),
        paid.payment_authorized(),
        paid.confirmed(),
        declined.placed(line(cup.sku, 1, "5.00")),
        cup.reserved(declined.order_id, 1, available=16),
        declined.payment_declined(),
        cup.released(declined.order_id, 1, available=17),
        declined.cancelled("payment_declined"),
        ada.email_changed("countess@example.org", "ada@example.org"),
        teapot.price_changed("24.50", "19.90"),
    ]


def snapshot() -> dict:
    """Every read-model row, without the bookkeeping timestamps."""
    tables = {}
    for model in READ_MODELS:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "updated_at"]
        tables[model.__name__] = sorted(model.objects.values_list(*fields), key=str)
    tables["positions"] = sorted(AggregatePosition.objects.values_list("projection", "aggregate_id", "version"))
    tables["best_sellers"] = best_sellers.top(100)
    return tables


def index_names() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, indexname FROM pg_indexes WHERE tablename LIKE 'read\\_%%' ORDER BY 1, 2")
        return list(cursor.fetchall())


def shadow_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE '%%\\_shadow'")
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db
def test_replay_rebuilds_every_read_model_from_the_log_and_swaps_it_in():
    # given: a projected log, then read models damaged by hand
    project(write_to_log(a_day_of_business()))
    expected, indexes = snapshot(), index_names()
    CustomerReadModel.objects.update(email="lost@example.org", orders_count=99)
    OrderReadModel.objects.filter(status="confirmed").delete()
    ProductReadModel.objects.create(sku="GHOST", name="Not in the log")
    BestSeller.objects.create(sku="GHOST", units_sold=5)

    # when
    call_command("replay_projections")

    # then
    assert snapshot() == expected
    assert index_names() == indexes
    assert shadow_tables() == []
    assert ProjectionCheckpoint.objects.get(projection="orders").rebuilt_at is not None
    call_command("verify_projections")


def test_projections_that_follow_the_same_aggregate_types_share_one_pass_over_the_log():
    # given
    customers, orders, products, best = (BY_NAME[n] for n in ("customers", "orders", "products", "best_sellers"))

    # when
    grouped = passes([customers, products, orders, best])

    # then: best sellers reads Order events only, a subsequence of (Customer, Order)
    assert [[p.name for p in group] for group in grouped] == [["customers", "orders", "best_sellers"], ["products"]]


@pytest.mark.django_db
def test_a_replay_that_hands_rows_on_and_reads_them_back_rebuilds_the_same_model():
    # given: a projected log, and room for a single row per projection while folding
    project(write_to_log(a_day_of_business()))
    expected = snapshot()
    CustomerReadModel.objects.update(orders_count=99)

    # when: every row is written to the shadow (COPY), read back for its next event, and written again (upsert)
    call_command("replay_projections", cache_rows=1)

    # then
    assert snapshot() == expected
    assert shadow_tables() == []
    call_command("verify_projections")


@pytest.mark.django_db
def test_a_replayed_model_keeps_being_projected_exactly_once():
    # given
    ada = CustomerStream()
    order = OrderStream(customer_id=ada.customer_id)
    logged = write_to_log([ada.registered(), order.placed(line("TEA", 2)), order.payment_authorized()])
    project(logged)
    call_command("replay_projections", "orders", "best_sellers")

    # when: a late duplicate, then the next event
    confirmed = write_to_log([order.confirmed()])
    project([*logged, *confirmed, *confirmed])

    # then
    assert OrderReadModel.objects.get(order_id=order.order_id).status == "confirmed"
    assert best_sellers.top(10) == [("TEA", 2)]
    call_command("verify_projections")


@pytest.mark.django_db(transaction=True)
def test_events_committed_while_a_replay_runs_are_in_the_model_it_swaps_in():
    # given
    ada = CustomerStream()
    project(write_to_log([ada.registered("Ada", "Lovelace", "ada@example.org")]))
    order = OrderStream(customer_id=ada.customer_id)
    arriving = [order.placed(line("TEA", 4, "3.00")), order.confirmed(), ada.email_changed("countess@example.org")]

    def write_and_project_elsewhere() -> None:
        try:
            project(write_to_log(arriving))
        finally:
            connection.close()

    fired = threading.Event()

    def progress(count: int) -> None:
        if not fired.is_set():
            fired.set()
            writer = threading.Thread(target=write_and_project_elsewhere)
            writer.start()
            writer.join()

    # when
    reports = [replay(BY_NAME[name], progress=progress) for name in ("customers", "orders", "best_sellers")]

    # then
    assert reports[0].caught_up == 3  # the rebuild's snapshot predates the three events
    customer = CustomerReadModel.objects.get(customer_id=ada.customer_id)
    assert (customer.email, customer.orders_count, str(customer.lifetime_value)) == ("countess@example.org", 1, "12.00")
    view = OrderReadModel.objects.get(order_id=order.order_id)
    assert (view.status, view.customer_email) == ("confirmed", "countess@example.org")
    assert best_sellers.top(10) == [("TEA", 4)]
    call_command("verify_projections")


@pytest.mark.django_db
def test_verify_lists_every_drifting_row_and_exits_non_zero(capsys):
    # given
    project(write_to_log(a_day_of_business()))
    ada = CustomerReadModel.objects.get(first_name="Ada")
    CustomerReadModel.objects.filter(pk=ada.pk).update(orders_count=42)
    OrderReadModel.objects.filter(status="cancelled").delete()
    ProductReadModel.objects.create(sku="GHOST", name="Not in the log")
    BestSeller.objects.create(sku="GHOST", units_sold=1)

    # when
    with pytest.raises(CommandError, match="Drift in customers, orders, products, best_sellers"):
        call_command("verify_projections")

    # then
    out = capsys.readouterr().out
    assert f"customers: read_customer {ada.pk}: orders_count is 42, the log gives 1" in out
    assert "orders: read_order " in out and "missing from the live table" in out
    assert "products: read_product GHOST: in the live table, not in the log" in out
    assert "best_sellers: read_best_seller GHOST: in the live table, not in the log" in out


@pytest.mark.django_db
def test_verify_does_not_take_lag_for_drift():
    # given: the log is ahead of the projections
    logged = write_to_log(a_day_of_business())
    project(logged[:6])

    # when / then
    call_command("verify_projections")


@pytest.mark.django_db
def test_a_replay_refuses_a_log_with_a_hole_and_leaves_the_live_model_alone():
    # given
    logged = write_to_log(a_day_of_business())
    project(logged)
    before = snapshot()
    OutboxEvent.objects.filter(event_id=logged[0]["event_id"]).delete()

    # when
    with pytest.raises(CommandError, match=r"customers, orders, best_sellers not rebuilt .*was it pruned"):
        call_command("replay_projections", "customers", "orders", "best_sellers")

    # then
    assert snapshot() == before
    assert shadow_tables() == []
    assert not AggregatePosition.objects.filter(projection__endswith=":replay").exists()


def test_on_the_embedded_default_replay_and_verify_rebuild_in_place(tmp_path):
    # given: SQLite and in-process tasks, with a projected log
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env["DATA_DIR"] = str(tmp_path)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    script = (
        "from tests.integration.test_replay_projections import a_day_of_business\n"
        "from tests.streams import write_to_log\n"
        "from queries_app.models import CustomerReadModel\n"
        "write_to_log(a_day_of_business())\n"
        "CustomerReadModel.objects.update(orders_count=7)\n"
        "from django.core.management import call_command\n"
        "call_command('replay_projections')\n"
        "call_command('verify_projections')\n"
        "from queries_app.models import BestSeller, OrderReadModel\n"
        "assert sorted(CustomerReadModel.objects.values_list('orders_count', flat=True)) == [1, 1]\n"
        "assert OrderReadModel.objects.filter(status='confirmed').count() == 1\n"
        "assert BestSeller.objects.count() == 2\n"
    )

    # when
    result = subprocess.run([*manage, "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)

    # then
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 drifting row(s)" in result.stdout
