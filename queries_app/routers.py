"""Sends read-side queries to the `replica` database (installed only when REPLICA_DATABASE_URL is set).

Reads of queries_app models go to the replica only outside a transaction: projections read what they are
about to write inside their apply transaction, and tests wrap each test in one, so both stay on the primary.
Writes, migrations and every other app stay on the primary.
"""

from collections.abc import Callable
from typing import Any

from django.db import connections

REPLICA = "replica"
PRIMARY = "default"


def _primary_in_transaction() -> bool:
    return connections[PRIMARY].in_atomic_block


class ReadReplicaRouter:
    def __init__(self, in_transaction: Callable[[], bool] = _primary_in_transaction) -> None:
        self.in_transaction = in_transaction

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if model._meta.app_label == "queries_app" and not self.in_transaction():
            return REPLICA
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica is a copy of the primary, migrated through it.
        return db != REPLICA
