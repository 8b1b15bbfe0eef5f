"""The real stack for integration and end-to-end tests: Celery workers, beat and gunicorn as separate processes.

They run against the same PostgreSQL test database and broker (RabbitMQ by default, or Redis) as the test
process; tests that use them must commit (transactional_db) so the worker sees their writes.
"""

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from kombu import Connection

from bench.environment import DELAY_QUEUES, purge_broker
from bench.private_services import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str, app: str = "config") -> subprocess.Popen[bytes]:
        """A Celery process (`celery -A APP ARGS`); the service's app unless a test brings one (a fault injected)."""
        return self.start_process(name, [sys.executable, "-m", "celery", "-A", app, *args])

    def start_process(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        if not self.processes:
            # What an earlier stack left on this broker (a message its killed process had not acknowledged,
            # requeued) is no concern of this one, whose database it could write into.
            purge_broker(self.env["CELERY_BROKER_URL"])
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def start_worker(
        self, name: str = "worker", concurrency: int = 2, queues: str | Sequence[str] = (), app: str = "config"
    ) -> subprocess.Popen[bytes]:
        """A worker on the given queues ("a,b" or a list; every work queue by default), ready when it returns."""
        process = self.start(
            name,
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            f"--hostname={name}@%h",
            "--without-mingle",
            "--without-gossip",
            *([f"--queues={queues if isinstance(queues, str) else ','.join(queues)}"] if queues else []),
            app=app,
        )
        self.wait_for_log(name, "ready.")
        return process

    def start_web(self, name: str = "web", workers: int = 2) -> int:
        """gunicorn as production runs it (README), answering on the port it returns; stopped with the others."""
        port = free_port()
        argv = [str(BIN / "gunicorn"), "config.wsgi", "-c", "config/gunicorn.py", f"--bind=127.0.0.1:{port}"]
        web = Web(port, self.start_process(name, [*argv, f"--workers={workers}"]), self.logs / f"{name}.log")
        deadline = time.monotonic() + 60
        while not _answers(web):
            if web.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not answer:\n{web.log.read_text(errors='replace')[-4000:]}")
            time.sleep(0.1)
        return port

    def start_production(self, *, web_workers: int = 2) -> int:
        """The production processes of the README: gunicorn, one worker per queue of work, beat. Returns the port."""
        for queue in PRODUCTION_QUEUES:
            self.start_worker(
                f"worker-{queue}", concurrency=2 if queue in ("projections", "sagas") else 1, queues=[queue]
            )
        self.start_beat()
        return self.start_web(workers=web_workers)

    def pid(self, name: str) -> int | None:
        """The pid of a process still running, None if it has exited."""
        process = self.processes[name]
        return process.pid if process.poll() is None else None

    def start_beat(self) -> subprocess.Popen[bytes]:
        return self.start("beat", "beat", "--loglevel=INFO", f"--schedule={self.logs / 'beat-schedule'}")

    def wait_for_log(self, name: str, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        path = self.logs / f"{name}.log"
        while time.monotonic() < deadline:
            if path.exists() and text in path.read_text(errors="replace"):
                return
            if self.processes[name].poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{name} did not log {text!r}:\n{path.read_text(errors='replace')[-4000:]}")

    def stop(self, name: str, sig: int = 15) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


# A worker per queue of work, as the README runs them.
PRODUCTION_QUEUES = ("relay", "projections", "sagas", "webhooks", "celery")


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(scope="session")
def stack_env(django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if settings.EMBEDDED:
        pytest.skip("the real stack needs CELERY_BROKER_URL (run through `make test`)")
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    purge_broker(settings.CELERY_BROKER_URL)
    data_dir = tmp_path_factory.mktemp("stack")
    return {**os.environ, "DATABASE_URL": database_url(), "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def celery_stack(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A worker and beat for one test module, stopped before the next module (or the database teardown)."""
    stack = Stack(env=stack_env, logs=tmp_path_factory.mktemp("stack-logs"))
    stack.start_worker()
    stack.start_beat()
    yield stack
    stack.stop_all()


@pytest.fixture
def own_stack(stack_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    """Processes that one test starts, kills and restarts itself; all stopped when it ends."""
    stack = Stack(env=stack_env, logs=tmp_path)
    yield stack
    stack.stop_all()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass
class Web:
    """gunicorn as production runs it (README: config/gunicorn.py, threaded workers), on a port of its own."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=headers)

    def worker_pids(self) -> set[int]:
        """The pids of gunicorn's worker processes (the master's children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return {int(pid) for pid in children}


@contextmanager
def gunicorn(env: Mapping[str, str], logs: Path, *, workers: int = 2) -> Iterator[Web]:
    """`gunicorn config.wsgi -c config/gunicorn.py --workers N` with DEBUG off, up once /livez answers; stopped at
    the end. Its log goes to a file in `logs`."""
    port = free_port()
    log = logs / f"gunicorn-{port}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                "-c",
                "config/gunicorn.py",
                f"--bind=127.0.0.1:{port}",
                f"--workers={workers}",
            ],
            cwd=ROOT,
            env={**env, "DJANGO_DEBUG": "false"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    web = Web(port, process, log)
    try:
        deadline = time.monotonic() + 30
        while not _answers(web):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            time.sleep(0.1)
        yield web
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _answers(web: Web) -> bool:
    try:
        return web.get("/livez").status == 200
    except OSError:
        return False


def collect_static(env: Mapping[str, str]) -> None:
    """`manage.py collectstatic`, as the image build and the README's production steps run it."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity=0"],
        cwd=ROOT,
        env=dict(env),
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def production_env(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The production profile: DEBUG off, static files collected under hashed names, metrics merged across
    processes through PROMETHEUS_MULTIPROC_DIR (shared by every process started with this environment)."""
    env = {
        **stack_env,
        "DJANGO_DEBUG": "false",
        "STATIC_ROOT": str(tmp_path_factory.mktemp("static")),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("metrics")),
    }
    collect_static(env)
    return env


@pytest.fixture(scope="session")
def production_web(production_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """gunicorn with two workers on the production profile, for the whole session."""
    with gunicorn(production_env, tmp_path_factory.mktemp("web-logs")) as web:
        yield web


def queue_depths(broker: Connection) -> dict[str, int]:
    """Messages ready in each work queue, through kombu (a passive declare): the same on RabbitMQ and Redis."""
    depths = {}
    for name in settings.WORK_QUEUES:
        with _channel(broker) as channel:
            depths[name] = (_depth(broker, channel, name) or 0) if channel is not None else 0
    return depths


def queued_bodies(url: str) -> list[bytes]:
    """The bodies of the messages waiting in a RabbitMQ broker's work and delay queues, left where they are: each
    is taken unacknowledged, and closing the channel gives them all back."""
    bodies = []
    with Connection(url, connect_timeout=5) as broker:
        for name in [*settings.WORK_QUEUES, *DELAY_QUEUES]:
            with _channel(broker) as channel:
                if _depth(broker, channel, name) is None:
                    continue
                while (message := channel.basic_get(name, no_ack=False)) is not None:
                    bodies.append(message.body)
    return bodies


@contextmanager
def _channel(broker: Connection) -> Iterator[Any]:
    """A fresh channel: on RabbitMQ a passive declare of a missing queue closes the channel it ran on."""
    channel: Any = broker.channel()
    try:
        yield channel
    finally:
        with suppress(*broker.connection_errors, *broker.channel_errors):
            channel.close()


def _depth(broker: Connection, channel: Any, name: str) -> int | None:
    """How many messages are ready in a queue, or None when there is no such queue."""
    try:
        return int(channel.queue_declare(queue=name, passive=True).message_count)
    except broker.channel_errors:
        return None


# Tasks that touch one table each: they wait for a flush, they cannot deadlock with it.
HARMLESS_TASKS = {"sagas_app.tick_sagas", "outbox_app.relay_outbox"}


def wait_until_idle(timeout: float = 20.0) -> None:
    """Wait until no event waits in the outbox or the broker and the workers run nothing that writes.

    After a test's assertions the worker may still be projecting its events; the flush that ends a
    transactional test (TRUNCATE of every table) would deadlock with those transactions.
    """
    from celery import current_app

    from outbox_app.models import OutboxEvent

    inspector = current_app.control.inspect(timeout=0.3)
    deadline = time.monotonic() + timeout
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=5) as broker:
        while time.monotonic() < deadline:
            if not inspector.ping():
                return  # no worker runs: whatever waits in the outbox or the queues writes nothing now
            pending = OutboxEvent.objects.filter(published_at__isnull=True, dead_at__isnull=True).exists()
            if not pending and not any(queue_depths(broker).values()):
                busy = [*(inspector.active() or {}).values(), *(inspector.reserved() or {}).values()]
                if all(task["name"] in HARMLESS_TASKS for tasks in busy for task in tasks):
                    return
            time.sleep(0.1)


@pytest.fixture(autouse=True)
def quiet_stack_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """For tests on the shared stack: let the worker finish before the database is flushed."""
    if "celery_stack" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so it is torn down after this waits
    yield
    wait_until_idle()
