"""Private instances of the services the stack stands on, for the tests and the chaos run that take them away.

A fault test stops PostgreSQL, a streaming replica, Redis or RabbitMQ for real, and only ever an instance of its
own: a PostgreSQL cluster made with pg_createcluster (with, for the replica, a pg_basebackup copy of it), a
redis-server on a free port (ThrowawayRedis) and a RabbitMQ node with its own name, ports and data
directory. Each is created on entry and stopped and removed on exit, whatever happened in between; a stopped
instance is started again on the same port, so clients reconnect to it as they would to a restarted server.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg
import redis

PG_VERSION = os.environ.get("TEST_PG_VERSION", "15")
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
# Durability is not what these tests are about: a fast, clean stop is their outage, never a crash of the host.
PG_FAST = ["-o", "fsync=off", "-o", "synchronous_commit=off", "-o", "full_page_writes=off"]


class Service(Protocol):
    """A private server a test or the chaos run takes away: stop() until start() brings it back on the same port."""

    def stop(self) -> None: ...
    def start(self) -> None: ...


def wait_for(what: str, ready: Callable[[], bool], timeout: float = 60.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(interval)
    raise AssertionError(f"{what} did not come up within {timeout}s")


def _run(*argv: str, user: str | None = None, env: dict[str, str] | None = None) -> str:
    command = ["runuser", "-u", user, "--", *argv] if user else list(argv)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- Redis ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ThrowawayRedis:
    """A private redis-server on its own port, to stop, hang and restart without touching the shared one."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # As a Redis broker should run: every write in the append-only file before it is acknowledged, so a stop
    # loses no queued message (the default here is a cache: nothing kept across a stop).
    durable: bool = False
    directory: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        persistence = ["--appendonly", "no"]
        if self.durable:
            self.directory = self.directory or Path(tempfile.mkdtemp(prefix="redis-"))
            persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)]
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence],
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
    def running(cls, *, durable: bool = False) -> Iterator["ThrowawayRedis"]:
        server = cls(durable=durable)
        server.start()
        try:
            yield server
        finally:
            if server.process is not None:
                server.resume()
            server.stop()
            if server.directory is not None:
                shutil.rmtree(server.directory, ignore_errors=True)


# --- PostgreSQL ---------------------------------------------------------------------------------------


class _Postgres:
    """What a primary and a replica share: a URL and a connection on 127.0.0.1 (trust authentication)."""

    port: int
    # A query that answers true once this server serves as it should.
    ready_query = "SELECT true"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=3)

    def answers(self) -> bool:
        try:
            with self.connect() as connection:
                row = connection.execute(self.ready_query).fetchone()
            return bool(row and row[0])
        except psycopg.OperationalError:
            return False


@dataclass
class PrivatePostgres(_Postgres):
    """A PostgreSQL cluster of the test's own, on its own port (trust authentication, like the shared one)."""

    name: str
    port: int
    # Left in place when the block ends (for a look after a failed chaos run), instead of dropped.
    keep: bool = False

    def start(self) -> None:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.name, "start")
        wait_for(f"PostgreSQL cluster {self.name}", self.answers)

    def stop(self) -> None:
        """A fast shutdown: open sessions are disconnected, and new connections are refused until start()."""
        _run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, self.name, "stop", "-m", "fast")

    def create_database(self, database: str) -> str:
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        return self.url(database)

    @classmethod
    @contextmanager
    def running(cls, *, settings: Sequence[str] = (), durable: bool = False) -> Iterator["PrivatePostgres"]:
        """`settings`: more pg_createcluster `-o name=value` options; `durable`: commits flushed to disk, as a
        production server's are (for a bench), instead of the fast, unsafe settings a fault test runs on."""
        cluster = cls(name=f"test_{uuid.uuid4().hex[:10]}", port=free_port())
        options = [*([] if durable else PG_FAST), *settings]
        _run("pg_createcluster", PG_VERSION, cluster.name, "--port", str(cluster.port), *options, "--", "--auth=trust")
        try:
            cluster.start()
            yield cluster
        finally:
            if not cluster.keep:
                with suppress(AssertionError):
                    _run("pg_dropcluster", "--stop", PG_VERSION, cluster.name)


@dataclass
class StreamingReplica(_Postgres):
    """A hot standby of a PrivatePostgres, made with pg_basebackup and streaming its WAL (about a second behind)."""

    primary: PrivatePostgres
    directory: Path
    port: int
    ready_query = "SELECT pg_is_in_recovery()"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        log = str(self.directory.parent / "replica.log")
        _run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.directory), "-o", options, "-l", log, "-w", "start", user="postgres"
        )
        wait_for("the streaming replica", self.answers)

    def stop(self) -> None:
        _run(str(PG_BIN / "pg_ctl"), "-D", str(self.directory), "-m", "fast", "-w", "stop", user="postgres")

    def pause_replay(self) -> None:
        """Keep receiving WAL but apply none of it: the replica shows the past until resume_replay()."""
        with self.connect() as connection:
            connection.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self.connect() as connection:
            connection.execute("SELECT pg_wal_replay_resume()")

    @classmethod
    @contextmanager
    def of(cls, primary: PrivatePostgres) -> Iterator["StreamingReplica"]:
        root = Path(tempfile.mkdtemp(prefix="replica-"))
        shutil.chown(root, "postgres")
        replica = cls(primary=primary, directory=root / "data", port=free_port())
        try:
            _run(
                str(PG_BIN / "pg_basebackup"),
                *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
                *("-D", str(replica.directory), "-R", "-X", "stream", "--checkpoint=fast"),
                user="postgres",
            )
            # Debian keeps a cluster's configuration outside its data directory: the copy needs its own.
            (replica.directory / "postgresql.conf").touch()
            shutil.copy(f"/etc/postgresql/{PG_VERSION}/{primary.name}/pg_hba.conf", replica.directory)
            for name in ("postgresql.conf", "pg_hba.conf"):
                shutil.chown(replica.directory / name, "postgres")
            replica.start()
            yield replica
        finally:
            with suppress(AssertionError):
                replica.stop()
            shutil.rmtree(root, ignore_errors=True)


# --- RabbitMQ -----------------------------------------------------------------------------------------


@dataclass
class PrivateRabbitMQ:
    """A RabbitMQ node of the test's own: its own node name, ports, data and logs, beside the machine's node.

    `rabbitmq-server` run as root switches to the rabbitmq user, so the node's directory belongs to it.
    `rabbitmqctl -n NODE` addresses this node only; the shared node is never touched.
    """

    node: str
    port: int
    directory: Path
    dist_port: int

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
        }

    def answers(self) -> bool:
        result = subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.node, "await_startup", "--timeout", "5"],
            capture_output=True,
            timeout=30,
        )
        return result.returncode == 0

    def start(self) -> None:
        _run("rabbitmq-server", "-detached", env=self._env())
        wait_for(f"RabbitMQ node {self.node}", self.answers, timeout=90, interval=0.3)

    def stop(self) -> None:
        """Stop the node: connections are closed and new ones refused until start()."""
        _run("rabbitmqctl", "-q", "-n", self.node, "stop")

    def hang(self) -> None:
        """Freeze the node (SIGSTOP): connections stay open and nothing is answered, as with a hung broker."""
        os.kill(self._pid(), signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self._pid(), signal.SIGCONT)

    def _pid(self) -> int:
        return int((self.directory / "pid").read_text().strip())

    @classmethod
    @contextmanager
    def running(cls) -> Iterator["PrivateRabbitMQ"]:
        directory = Path(tempfile.mkdtemp(prefix="rabbitmq-"))
        node = cls(f"test_{uuid.uuid4().hex[:10]}@localhost", free_port(), directory, dist_port=free_port())
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{node.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        for path in [directory, *directory.iterdir()]:
            shutil.chown(path, "rabbitmq", "rabbitmq")
        try:
            node.start()
            yield node
        finally:
            with suppress(OSError, ValueError):
                node.resume()
            with suppress(AssertionError, subprocess.TimeoutExpired):
                node.stop()
            shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def private_broker(kind: str) -> Iterator[Any]:
    """A broker of one's own: a RabbitMQ node ("rabbitmq"), or a redis-server that persists every write ("redis")."""
    if kind == "rabbitmq":
        with PrivateRabbitMQ.running() as node:
            yield node
    else:
        with ThrowawayRedis.running(durable=True) as server:
            yield server
