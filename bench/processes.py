"""The processes a bench or the chaos run starts: each in its own process group, always stopped at the end.

gunicorn, Celery workers and beat run as in production (README), from this checkout's virtualenv, with the
world's environment; their output goes to log files under the world's scratch directory.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.environment import ROOT, World
from bench.private_services import free_port

BIN = Path(sys.executable).parent


@dataclass
class Processes:
    world: World
    env: dict[str, str]
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.world.workdir / "logs" / f"{name}.log"

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(self.log(name), "ab") as log:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.running[name] = process
        self.argv[name] = argv
        return process

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        process = self.start(name, self.argv[name])
        if name in self.ports:
            self.wait_http(self.ports[name])
        return process

    # --- the production processes --------------------------------------------------------------------
    def gunicorn(self, name: str = "web", *, workers: int = 2, port: int | None = None, app: str | None = None) -> int:
        """The web tier; `app`: another WSGI module than the service's (bench/bare_wsgi.py)."""
        port = port or free_port()
        self.ports[name] = port
        self.start(
            name,
            [
                str(BIN / "gunicorn"),
                app or "config.wsgi",
                "--config=config/gunicorn.py",
                f"--bind=127.0.0.1:{port}",
                f"--workers={workers}",
                "--graceful-timeout=5",
                "--timeout=60",
            ],
        )
        self.wait_http(port)
        return port

    def worker(
        self,
        name: str = "worker",
        *,
        concurrency: int = 2,
        pool: str = "prefork",
        queues: tuple[str, ...] = (),
        loglevel: str = "WARNING",
    ) -> None:
        """A Celery worker on the given queues (every work queue by default), ready when it returns: it answered a
        ping over this process's broker, or (at log level INFO, on a broker this process does not use) it logged
        that it is ready."""
        self.start(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                f"--loglevel={loglevel}",
                f"--concurrency={concurrency}",
                f"--pool={pool}",
                f"--hostname={name}@%h",
                "--without-mingle",
                "--without-gossip",
                *([f"--queues={','.join(queues)}"] if queues else []),
            ],
        )
        if loglevel == "INFO":
            self.wait_for_log(name, f"{name}@{socket.gethostname()} ready.")
        else:
            self.wait_for_worker(name)

    def beat(self, name: str = "beat") -> None:
        schedule = self.world.workdir / "data" / f"{name}-schedule"
        self.start(name, [str(BIN / "celery"), "-A", "config", "beat", "--loglevel=WARNING", f"--schedule={schedule}"])

    # --- waiting and stopping ------------------------------------------------------------------------
    def wait_http(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nothing answered on port {port} within {timeout}s")

    def wait_for_log(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name).read_text(errors="replace"):
            if self.running[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not log {text!r}: {self.log(name).read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)

    def wait_for_worker(self, name: str, timeout: float = 60) -> None:
        """A worker is ready when it answers a ping (its log level hides the 'ready.' line)."""
        from celery import current_app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name).read_text(errors='replace')[-2000:]}")
            try:
                replies = current_app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=0.5)
            except Exception:  # the broker is restarting (the chaos run stops it): ask again
                time.sleep(0.5)
                continue
            if replies:
                return
        raise RuntimeError(f"{name} did not answer a ping within {timeout}s")

    def kill(self, name: str) -> None:
        """SIGKILL the process group: the process and every child it forked die at once."""
        self.stop(name, signal.SIGKILL)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.running.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        # Children that outlived their parent (a SIGTERM'd master) still belong to the group.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def rss_kib(self, name: str) -> int:
        """Resident size of every process in the group (a master and its forked workers), in KiB."""
        return sum(rss for _, rss in group_members(self.running[name].pid))


def group_members(pgid: int) -> list[tuple[int, int]]:
    """(pid, VmRSS KiB) of the live processes in a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) != pgid:
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        members.append((int(entry.name), rss))
    return members


@contextmanager
def processes(world: World, **env: str) -> Iterator[Processes]:
    """Processes started inside the block are stopped when it ends, however it ends (Ctrl-C included)."""
    group = Processes(world=world, env=world.env(**env))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield group
    finally:
        group.stop_all()
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
