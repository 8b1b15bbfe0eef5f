"""Where a run's CPU goes: CPU seconds per process group between two snapshots, from /proc.

The bench's own processes are counted by process group (a Celery master and its pool, gunicorn and its
workers); the services by name (PostgreSQL's backends, RabbitMQ's Erlang VM, Redis); this process (the bench's
clients) by itself. A process's figure includes its reaped children (cutime, cstime), so a PostgreSQL backend
that ended during the run is counted once, in the postmaster.
"""

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.processes import Processes

TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = {"postgres": "PostgreSQL", "beam.smp": "RabbitMQ", "redis-server": "Redis"}


@dataclass(frozen=True)
class Snapshot:
    seconds: dict[str, float]
    busy: float
    """The machine's busy CPU seconds (every core), from /proc/stat."""


def _fields(stat: str) -> list[str]:
    """The fields of a /proc/<pid>/stat after the command's name (which may hold spaces and parentheses)."""
    return stat.rsplit(")", 1)[1].split()


def own_seconds(pid: int) -> float:
    """CPU seconds one process has used so far, without its reaped children's."""
    fields = _fields(Path(f"/proc/{pid}/stat").read_text())
    return (int(fields[11]) + int(fields[12])) / TICKS


def snapshot(group: Processes) -> Snapshot:
    by_pgid = {process.pid: name for name, process in group.running.items()}
    seconds: dict[str, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], _fields(stat)
        pgid, used = int(rest[2]), sum(int(value) for value in rest[11:15]) / TICKS
        if int(entry.name) == os.getpid():
            seconds["the bench's clients"] += used
        elif pgid in by_pgid:
            seconds[by_pgid[pgid]] += used
        elif comm in SERVICES:
            seconds[SERVICES[comm]] += used
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(fields[3]) + int(fields[4])
    return Snapshot(dict(seconds), (sum(int(value) for value in fields[:8]) - idle) / TICKS)


def spent(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per group between the snapshots, the largest first, with the machine's total ("all")."""
    names = set(before.seconds) | set(after.seconds)
    used = {name: after.seconds.get(name, 0.0) - before.seconds.get(name, 0.0) for name in names}
    ordered = dict(sorted(((n, s) for n, s in used.items() if s > 0), key=lambda item: -item[1]))
    return {**ordered, "all": after.busy - before.busy}


def per_item(used: dict[str, float], items: int, unit: str = "order") -> str:
    """'web 3.1 ms, worker-sagas 20.4 ms, ... (all 60.0 ms) per order'."""
    parts = [f"{name} {seconds / max(items, 1) * 1000:.1f} ms" for name, seconds in used.items() if name != "all"]
    total = used.get("all", 0.0) / max(items, 1) * 1000
    return f"{', '.join(parts)}; the machine {total:.1f} ms of CPU per {unit}"
