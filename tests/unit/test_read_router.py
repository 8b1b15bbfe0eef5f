"""The read replica router: read-side reads go to the replica (while it is usable), but never inside a transaction."""

from api_common.models import ApiClient
from queries_app.models import CustomerReadModel, OrderReadModel
from queries_app.routers import ReadReplicaRouter


def test_read_side_reads_outside_a_transaction_go_to_the_replica_while_it_is_usable():
    router = ReadReplicaRouter(in_transaction=lambda: False, replica_or_primary=lambda: "replica")

    assert router.db_for_read(CustomerReadModel) == "replica"
    assert router.db_for_read(OrderReadModel) == "replica"


def test_read_side_reads_go_to_the_primary_when_the_replica_is_not_usable():
    router = ReadReplicaRouter(in_transaction=lambda: False, replica_or_primary=lambda: "default")

    assert router.db_for_read(CustomerReadModel) == "default"


def test_read_side_reads_inside_a_transaction_stay_on_the_primary():
    router = ReadReplicaRouter(in_transaction=lambda: True)

    assert router.db_for_read(CustomerReadModel) is None


def test_other_apps_and_all_writes_stay_on_the_primary():
    router = ReadReplicaRouter(in_transaction=lambda: False, replica_or_primary=lambda: "replica")

    assert router.db_for_read(ApiClient) is None
    assert router.db_for_write(CustomerReadModel) == "default"


def test_the_replica_is_never_migrated():
    router = ReadReplicaRouter()

    assert router.allow_migrate("replica", "queries_app") is False
    assert router.allow_migrate("default", "queries_app") is True
