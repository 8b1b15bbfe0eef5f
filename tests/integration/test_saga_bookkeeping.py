"""The saga's bookkeeping commits without waiting for the disk; a transaction it joins keeps its own commit."""

import pytest
from django.db import connection, transaction

from sagas_app import bookkeeping

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
