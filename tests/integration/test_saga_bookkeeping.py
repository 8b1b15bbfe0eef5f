"""The saga's bookkeeping commits without waiting for the disk; a transaction it joins keeps its own commit; its
conditional writes set what the ORM's update would."""

from datetime import timedelta
from uuid import uuid4

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Now

import sqlkit
from sagas_app import bookkeeping
from sagas_app.models import Saga

pytestmark = pytest.mark.django_db(transaction=True)


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_the_sagas_own_transactions_commit_asynchronously_and_leave_others_as_they_were():
    with bookkeeping.records():
        own = synchronous_commit()
    with transaction.atomic(), bookkeeping.records():
        joined = synchronous_commit()

    assert (own, joined, synchronous_commit()) == ("off", "on", "on")


def test_an_update_with_computed_fields_sets_them_as_the_orm_would_on_the_database_clock_and_checks_its_row_count():
    # given: a saga's row, as the executor's conditional writes find it
    saga = Saga.objects.create(saga_type="fulfilment", correlation_id=str(uuid4()), current_step="reserve_inventory")

    def write(version: int) -> sqlkit.Statement:
        return sqlkit.update(
            Saga,
            {"attempts": 3, "lease_owner": "me"},
            computed={
                "version": F("version") + 1,
                "updated_at": Now(),
                "lease_expires_at": Now() + timedelta(seconds=30),
            },
            where={"saga_id": saga.saga_id, "version": version},
            expect_rows=1,
            mismatch=lambda: LookupError("moved"),
        )

    # when
    sqlkit.send([write(version=1)])

    # then: the plain values, the version counted on from the row's own, both times from the same database clock
    written = Saga.objects.get(pk=saga.saga_id)
    assert (written.attempts, written.lease_owner, written.version) == (3, "me", 2)
    assert written.lease_expires_at - written.updated_at == timedelta(seconds=30)
    assert written.updated_at > saga.updated_at
    # and a write conditional on the version it no longer has changes nothing and raises its mismatch
    with pytest.raises(LookupError, match="moved"):
        sqlkit.send([write(version=1)])
    assert Saga.objects.get(pk=saga.saga_id).version == 2
