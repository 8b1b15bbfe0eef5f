"""Memory: resident size of the web tier and the Celery worker after 100,000 commands, against their start.

gunicorn, a worker (prefork, 2 processes) and beat run as in production; wrk sends register-customer commands
in chunks until 100,000 have been answered (or the time cap is reached: the figure then says how many). The
resident size of each process group (master and forked children together, VmRSS) is read after a warm-up of a
few thousand commands ("start": every code path imported, pools filled) and again at the end; the size right
after boot is reported too.
"""

import time

from bench.context import Context
from bench.environment import reset_tables
from bench.http_load import wrk
from bench.processes import Processes, group_members, processes
from bench.results import Figure, Section, at_most

CHUNK_SECONDS = 20
QUICK_CHUNK_SECONDS = 10


def sizes(group: Processes) -> dict[str, int]:
    return {name: group.rss_kib(name) for name in ("web", "worker")}


def per_process(group: Processes, name: str) -> str:
    return ", ".join(f"{rss / 1024:.0f}" for _, rss in sorted(group_members(group.running[name].pid)))


def run(ctx: Context) -> Section:
    section = Section("Memory")
    target = 2_000 if ctx.quick else 100_000
    cap = 30.0 if ctx.quick else ctx.memory_minutes * 60
    reset_tables()
    token = ctx.token
    connections = 2 * ctx.web_workers
    with processes(ctx.world) as group:
        port = group.gunicorn(workers=ctx.web_workers)
        group.worker("worker", concurrency=2)
        group.beat()
        boot = sizes(group)
        warm = wrk(port, "commands.lua", token, 10, connections)
        start = sizes(group)
        start_detail = {name: per_process(group, name) for name in start}
        commands = int(warm.rate * 10) - warm.errors
        errors = 0
        began = time.monotonic()
        chunk = QUICK_CHUNK_SECONDS if ctx.quick else CHUNK_SECONDS
        while commands < target and time.monotonic() - began < cap:
            load = wrk(port, "commands.lua", token, chunk, connections)
            commands += round(load.rate * chunk) - load.errors
            errors += load.errors
        end = sizes(group)
        end_detail = {name: per_process(group, name) for name in end}
    for name in ("web", "worker"):
        growth = end[name] / start[name] - 1
        section.figures.append(
            Figure(
                f"memory: {name} resident size after {commands:,} commands",
                end[name] / 1024,
                "MiB",
                baseline="at start (after warm-up)",
                baseline_value=start[name] / 1024,
                target="growth <= 20%",
                met=at_most(0.20)(growth) if commands >= target else None,
                note=f"{growth:+.1%}",
            )
        )
    reached = "" if commands >= target else f" (the {cap:.0f}s cap stopped it short of {target:,})"
    section.notes.append(
        f"{commands:,} commands{reached}, {errors} failed; resident size (MiB) of each process group at boot / "
        f"after warm-up / at the end: web {boot['web'] / 1024:.0f} / {start['web'] / 1024:.0f} / "
        f"{end['web'] / 1024:.0f}, worker {boot['worker'] / 1024:.0f} / {start['worker'] / 1024:.0f} / "
        f"{end['worker'] / 1024:.0f}. Per process, after warm-up: web {start_detail['web']}, worker "
        f"{start_detail['worker']}; at the end: web {end_detail['web']}, worker {end_detail['worker']}. "
        f"gunicorn {ctx.web_workers} workers; the worker projects as much as it can meanwhile."
    )
    reset_tables()
    return section
