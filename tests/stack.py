"""The real stack for integration and end-to-end tests: Celery workers, beat and gunicorn as separate processes.

They run against the same PostgreSQL test database and Redis broker as the test process; tests that use
them must commit (transactional_db) so the worker sees their writes.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_worker(
        self, name: str = "worker", concurrency: int = 2, queues: str | None = None
    ) -> subprocess.Popen[bytes]:
        process = self.start(
            name,
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            f"--hostname={name}@%h",
            "--without-mingle",
            "--without-gossip",
            *([f"--queues={queues}"] if queues else []),
        )
        self.wait_for_log(name, "ready.")
        return process

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


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(scope="session")
def stack_env(django_db_setup: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if settings.EMBEDDED:
        pytest.skip("the real stack needs CELERY_BROKER_URL (run through `make test`)")
    for url in (settings.REDIS_URL, settings.CELERY_BROKER_URL):
        redis.Redis.from_url(url).flushdb()
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ThrowawayRedis:
    """A private redis-server on its own port, to stop, hang and restart without touching the shared one."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Kill it: clients get connection refused until start() runs it again on the same port."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def hang(self) -> None:
        """Freeze it (SIGSTOP): connections are accepted but nothing is answered, as with a hung broker."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @classmethod
    @contextmanager
    def running(cls) -> Iterator["ThrowawayRedis"]:
        server = cls()
        server.start()
        try:
            yield server
        finally:
            if server.process is not None:
                server.resume()
            server.stop()


# The PostgreSQL major version the machine's clusters run (Debian keeps one directory per version).
VERSION = next(iter(sorted(path.name for path in Path("/etc/postgresql").glob("*"))), "15")


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (Debian's pg_createcluster), to stop and start at will."""

    port: int = field(default_factory=free_port)

    @property
    def name(self) -> str:
        return f"test{self.port}"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, action: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", VERSION, self.name, action], check=True)

    @classmethod
    @contextmanager
    def running(cls) -> Iterator["PrivatePostgres"]:
        server = cls()
        create = ["pg_createcluster", VERSION, server.name, "--port", str(server.port), "--", "--auth=trust"]
        subprocess.run(create, check=True, capture_output=True)
        try:
            server.ctl("start")
            yield server
        finally:
            subprocess.run(["pg_dropcluster", "--stop", VERSION, server.name], check=True, capture_output=True)


# Tasks that touch one table each: they wait for a flush, they cannot deadlock with it.
HARMLESS_TASKS = {"sagas_app.tick_sagas", "outbox_app.relay_outbox"}


def wait_until_idle(timeout: float = 20.0) -> None:
    """Wait until no event waits in the outbox or the broker and the workers run nothing that writes.

    After a test's assertions the worker may still be projecting its events; the flush that ends a
    transactional test (TRUNCATE of every table) would deadlock with those transactions.
    """
    from celery import current_app

    from outbox_app.models import OutboxEvent

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    inspector = current_app.control.inspect(timeout=0.3)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = OutboxEvent.objects.filter(published_at__isnull=True, dead_at__isnull=True).exists()
        if not pending and not broker.llen("celery"):
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
