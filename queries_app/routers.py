"""Sends read-side queries to the `replica` database (installed only when REPLICA_DATABASE_URL is set), while it
answers and keeps up; to the primary otherwise.

Reads of queries_app models go to the replica only outside a transaction: projections read what they are
about to write inside their apply transaction, and tests wrap each test in one, so both stay on the primary.
Writes, migrations and every other app stay on the primary.

Each process probes the replica at most every REPLICA_CHECK_SECONDS (one query on a connection it keeps): a
replica that does not answer, or whose replay is more than REPLICA_MAX_DELAY_SECONDS behind the primary, is left
alone until the next probe, and its reads go to the primary. A read that fails on the replica in between is
run again on the primary by the query view (`replica_failed`), so a replica going away costs no failed answer.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, connections

log = structlog.get_logger(__name__)

REPLICA = "replica"
PRIMARY = "default"

# How far the replica's replay is behind the primary: 0 when it has applied all the WAL it received (an idle
# primary sends none, so the age of the last replayed transaction would overstate it), else that age.
REPLAY_DELAY_SQL = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def replica_delay_seconds() -> float | None:
    """The replica's replay delay in seconds; None without a replica. Raises DatabaseError if it does not answer."""
    if not replica_configured():
        return None
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(REPLAY_DELAY_SQL)
        row = cursor.fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


@dataclass(frozen=True)
class ReplicaStatus:
    """What the status reports say of the replica: its replay delay, or why it serves no reads."""

    delay_seconds: float | None
    error: str = ""

    @property
    def serves_reads(self) -> bool:
        return self.delay_seconds is not None and self.delay_seconds <= settings.REPLICA_MAX_DELAY_SECONDS

    def __str__(self) -> str:
        if self.delay_seconds is None:
            return f"unavailable ({self.error}): EVENTUAL reads go to the primary"
        if not self.serves_reads:
            return f"{self.delay_seconds:.1f}s behind, over REPLICA_MAX_DELAY_SECONDS: EVENTUAL reads go to the primary"
        return f"{self.delay_seconds:.1f}s behind the primary"


def replica_status() -> ReplicaStatus | None:
    """The replica's delay as the status reports show it; None without a replica."""
    if not replica_configured():
        return None
    try:
        return ReplicaStatus(delay_seconds=replica_delay_seconds())
    except DatabaseError as error:
        connections[REPLICA].close()
        return ReplicaStatus(delay_seconds=None, error=f"{type(error).__name__}: {error}".strip()[:200])


@dataclass
class _Probe:
    """This process's last look at the replica."""

    at: float = float("-inf")
    usable: bool = False


_probe = _Probe()


def replica_for_reads(clock: Callable[[], float] = time.monotonic) -> str:
    """The alias EVENTUAL reads use: the replica when configured, answering and keeping up, else the primary."""
    if not replica_configured():
        return PRIMARY
    now = clock()
    if now - _probe.at >= settings.REPLICA_CHECK_SECONDS:
        _probe.at, _probe.usable = now, _replica_usable()
    return REPLICA if _probe.usable else PRIMARY


def _replica_usable() -> bool:
    try:
        delay = replica_delay_seconds() or 0.0
    except DatabaseError as error:
        connections[REPLICA].close()
        log.warning("replica.unavailable", error=f"{type(error).__name__}: {error}"[:300], reads="primary")
        return False
    if delay > settings.REPLICA_MAX_DELAY_SECONDS:
        log.warning("replica.behind", delay_seconds=round(delay, 3), reads="primary")
        return False
    return True


def replica_failed(error: BaseException) -> bool:
    """After a read failed with `error`: was it the replica's fault? If so its reads go to the primary until the
    next probe, and the caller may run the read again there."""
    if not replica_configured() or not isinstance(error, DatabaseError):
        return False
    replica = connections[REPLICA]
    if replica.connection is not None and replica.is_usable():
        return False  # the replica answers: the failure was the primary's
    replica.close()
    _probe.at, _probe.usable = time.monotonic(), False
    log.warning("replica.unavailable", error=f"{type(error).__name__}: {error}"[:300], reads="primary")
    return True


def _primary_in_transaction() -> bool:
    return connections[PRIMARY].in_atomic_block


class ReadReplicaRouter:
    def __init__(
        self,
        in_transaction: Callable[[], bool] = _primary_in_transaction,
        replica_or_primary: Callable[[], str] = replica_for_reads,
    ) -> None:
        self.in_transaction = in_transaction
        self.replica_or_primary = replica_or_primary

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if model._meta.app_label == "queries_app" and not self.in_transaction():
            return self.replica_or_primary()
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica is a copy of the primary, migrated through it.
        return db != REPLICA
