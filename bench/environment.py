"""The bench's own world: a PostgreSQL database and Redis DB numbers of its own, never the tests' ones.

Everything here runs before Django is set up: the environment decides which database the settings read.
"""

import os
import platform
import subprocess
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("BENCH_REDIS_SERVER", "redis://127.0.0.1:6379")
# A broker of the bench's own (amqp://.../VHOST); by default the Redis server's broker DB.
BROKER = os.environ.get("BENCH_BROKER_URL", "")


@dataclass(frozen=True)
class World:
    """One database and two Redis DB numbers (cache, broker), plus a scratch directory for logs and beat.

    By default on the machine's PostgreSQL and Redis (BENCH_PG_SERVER, BENCH_REDIS_SERVER), with the Redis broker DB
    unless BENCH_BROKER_URL names a broker (RabbitMQ); the chaos run gives it servers and a broker of its own.
    """

    database: str
    cache_db: int
    broker_db: int
    workdir: Path
    pg_server: str = PG_SERVER
    redis_server: str = REDIS_SERVER
    broker: str = BROKER

    @property
    def database_url(self) -> str:
        return f"{self.pg_server}/{self.database}"

    @property
    def redis_url(self) -> str:
        return f"{self.redis_server}/{self.cache_db}"

    @property
    def broker_url(self) -> str:
        return self.broker or f"{self.redis_server}/{self.broker_db}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of the processes the bench starts (and of its own Django)."""
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.broker_url,
            "DATA_DIR": str(self.workdir / "data"),
            "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }


def new_world(database: str, cache_db: int, broker_db: int, **servers: str) -> World:
    workdir = Path(tempfile.mkdtemp(prefix=f"{database}-", dir=_scratch_root()))
    (workdir / "data").mkdir()
    (workdir / "logs").mkdir()
    return World(database=database, cache_db=cache_db, broker_db=broker_db, workdir=workdir, **servers)


def _scratch_root() -> Path:
    root = ROOT / "var" / "bench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def enter(world: World) -> None:
    """Point this process at the world (before django.setup())."""
    for name, value in world.env().items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _admin(world: World) -> psycopg.Connection:
    return psycopg.connect(f"{world.pg_server}/postgres", autocommit=True)


def create_database(world: World) -> None:
    with _admin(world) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{world.database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{world.database}"')
    flush_redis(world)


def drop_database(world: World) -> None:
    with _admin(world) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{world.database}" WITH (FORCE)')
    flush_redis(world)


def flush_redis(world: World) -> None:
    for url in (world.redis_url, world.broker_url):
        if url.startswith("redis"):
            redis.Redis.from_url(url, socket_timeout=5).flushdb()


# Celery's native delayed delivery on RabbitMQ: countdowns wait in these queues (levels of 1, 2, 4... seconds).
DELAY_QUEUES = [f"celery_delayed_{level}" for level in range(28)]


def purge_broker(url: str | None = None) -> None:
    """Empty a broker (the settings' one by default) of what earlier work left queued for the workers: flush a Redis
    broker's DB, purge RabbitMQ's work and delay queues (those that exist). Needs django.setup()."""
    from django.conf import settings
    from kombu import Connection

    url = url or settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        redis.Redis.from_url(url).flushdb()
        return
    with Connection(url, connect_timeout=5) as broker:
        for name in [*settings.WORK_QUEUES, *DELAY_QUEUES]:
            # A fresh channel per queue: on RabbitMQ, purging a missing queue closes the channel it ran on.
            channel: Any = broker.channel()
            try:
                channel.queue_purge(name)
            except broker.channel_errors:
                pass
            finally:
                with suppress(*broker.connection_errors, *broker.channel_errors):
                    channel.close()


def setup_django(world: World, *, log_to: Path | None = None) -> None:
    """django.setup() on the world, migrate it, and send this process's logs to a file instead of the terminal."""
    enter(world)
    import django
    from django.core.management import call_command

    django.setup()
    if log_to is not None:
        import logging

        stream = open(log_to, "a")  # noqa: SIM115 (lives as long as the process)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(stream)
    call_command("migrate", verbosity=0, interactive=False)


APP_LABELS = ("commands_app", "outbox_app", "queries_app", "sagas_app")


def reset_tables(*app_labels: str) -> None:
    """Empty every table the service writes (or those of the given apps); API clients and migrations stay."""
    from django.apps import apps
    from django.db import connection

    keep = {"api_common_apiclient", "django_migrations", "django_content_type", "auth_permission"}
    tables = [
        model._meta.db_table
        for label in app_labels or APP_LABELS
        for model in apps.get_app_config(label).get_models()
        if model._meta.db_table not in keep
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(connection.ops.quote_name(t) for t in tables)}")


def vacuum_analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def analyze_as_autovacuum_would() -> None:
    """ANALYZE the database, as autovacuum does within a minute or so of a service's first writes: the tables a
    run created and filled have no statistics before it (and this machine's server has autovacuum off), and the
    planner plans their lookups for empty tables, which a service does only in its first minute."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def machine(world: World) -> dict[str, str]:
    """What the figures were measured on."""

    def run(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    cpu = next(
        (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    memory_kb = next((line.split()[1] for line in _lines("/proc/meminfo") if line.startswith("MemTotal")), "0")
    with psycopg.connect(world.database_url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
        postgres = str(row[0]) if row else "?"
        # Whether dead rows are vacuumed away while the run goes on: with autovacuum off (this machine's server),
        # every updated row's old version stays in the tables and their indexes (docs/outbox.md, "claim").
        row = connection.execute("SHOW autovacuum").fetchone()
        postgres += f", autovacuum {row[0] if row else '?'}"
    redis_info = redis.Redis.from_url(world.redis_url, socket_timeout=5).info("server")
    # The report this run rewrites is not code: a change to it alone leaves the commit what was measured. Neither is
    # an untracked file (a worktree's .venv symlink); a new module under test is committed before it is measured.
    dirty = run("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/benchmarks.md")
    commit = run("git", "rev-parse", "--short", "HEAD")
    return {
        "cpus (nproc)": run("nproc"),
        "cpu model": cpu,
        "memory": f"{int(memory_kb) / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "postgresql": postgres,
        "redis": str(redis_info.get("redis_version", "?")),
        "python": platform.python_version(),
        "git commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []
