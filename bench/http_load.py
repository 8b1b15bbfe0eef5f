"""HTTP through gunicorn: commands/s and queries/s with p50/p99, with the command pipeline on and off.

wrk (Debian: `apt-get install -y wrk`) drives 127.0.0.1 only, with Lua scripts under bench/wrk/: every command
has its own Idempotency-Key and email. gunicorn runs as in production (config/gunicorn.py: threaded workers,
keep-alive; --workers from the bench's --web-workers). Per run: commands, queries and the /livez floor with
the full pipelines, then commands and queries with COMMAND_PIPELINE=bare and QUERY_PIPELINE=bare (the same
endpoints without the mediator's middlewares, and without the queries' authentication, scope check and rate
limit). The queries' baselines are the /livez floor (gunicorn and Django's middleware, no view work, no
database) and the same endpoint with QUERY_PIPELINE=bare.
"""

import json
import shutil
import subprocess
import uuid
from dataclasses import dataclass

from bench.context import Context
from bench.environment import ROOT, reset_tables
from bench.processes import processes
from bench.results import Figure, Section, at_least, median

WRK = ROOT / "bench" / "wrk"
INSTALL_WRK = "wrk is missing: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu)."


@dataclass(frozen=True)
class Load:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError(INSTALL_WRK)
    return found


def wrk(port: int, script: str, token: str, seconds: int, connections: int, *args: str, path: str = "") -> Load:
    result = subprocess.run(
        [
            require_wrk(),
            "--threads=2",
            f"--connections={connections}",
            f"--duration={seconds}s",
            "--timeout=10s",
            f"--script={WRK / script}",
            f"--header=Authorization: Token {token}",
            f"http://127.0.0.1:{port}{path}",
            *(["--", *args] if args else []),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    summary = next((line for line in result.stdout.splitlines() if line.startswith("{")), None)
    if result.returncode != 0 or summary is None:
        raise RuntimeError(f"wrk failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")
    data = json.loads(summary)
    errors = sum(data[k] for k in ("non_2xx_3xx", "connect", "read", "write", "timeout"))
    return Load(
        rate=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
    )


def seed_read_model(count: int) -> list[str]:
    """Customers straight into the read table: the queries measure the query path, not the projection."""
    from queries_app.models import CustomerView

    rows = [
        CustomerView(customer_id=uuid.uuid4(), first_name="Ada", last_name="Lovelace", email=f"q{i}@bench.example")
        for i in range(count)
    ]
    for row in rows:
        row.version = 1
    CustomerView.objects.bulk_create(rows, batch_size=1000)
    return [str(row.customer_id) for row in rows]


def run(ctx: Context) -> Section:
    require_wrk()
    section = Section("HTTP through gunicorn")
    seconds = 4 if ctx.quick else 8
    connections = 2 * ctx.web_workers
    reset_tables()
    ids_file = ctx.world.workdir / "customer-ids.txt"
    ids_file.write_text("\n".join(seed_read_model(300 if ctx.quick else 5000)) + "\n")
    token = ctx.token
    loads: dict[str, list[Load]] = {"commands": [], "bare": [], "queries": [], "queries_bare": [], "livez": []}
    for _ in range(ctx.repeat):
        for pipeline in ("full", "bare"):
            with processes(ctx.world, COMMAND_PIPELINE=pipeline, QUERY_PIPELINE=pipeline) as group:
                port = group.gunicorn(workers=ctx.web_workers)
                wrk(port, "commands.lua", token, 2, connections)  # warm every worker up
                wrk(port, "queries.lua", token, 2, connections, str(ids_file))
                if pipeline == "bare":
                    loads["bare"].append(wrk(port, "commands.lua", token, seconds, connections))
                    loads["queries_bare"].append(wrk(port, "queries.lua", token, seconds, connections, str(ids_file)))
                    continue
                loads["commands"].append(wrk(port, "commands.lua", token, seconds, connections))
                loads["queries"].append(wrk(port, "queries.lua", token, seconds, connections, str(ids_file)))
                loads["livez"].append(wrk(port, "plain.lua", token, seconds, connections, path="/livez"))
    section.figures += figures(loads)
    errors = {name: sum(load.errors for load in runs) for name, runs in loads.items()}
    bare_p50 = median([load.p50_ms for load in loads["queries_bare"]])
    bare_p99 = median([load.p99_ms for load in loads["queries_bare"]])
    section.notes.append(
        f"gunicorn {ctx.web_workers} workers (config/gunicorn.py: gthread, 2 threads each, keep-alive); wrk 2 "
        f"threads, {connections} connections, {seconds}s per "
        f"measurement, {ctx.repeat} runs; no Celery worker runs (the outbox just fills). Commands are "
        f"register-customer with a unique Idempotency-Key and email each; queries are GET /api/customers/<id> "
        f"(STRONG, primary, by key) over {len(ids_file.read_text().split())} customers. Non-2xx or failed "
        f"requests: {errors}. Queries with QUERY_PIPELINE=bare: p50 {bare_p50:.2f} ms, p99 {bare_p99:.2f} ms."
    )
    reset_tables()
    return section


def figures(loads: dict[str, list[Load]]) -> list[Figure]:
    def med(name: str, attribute: str) -> float:
        return median([getattr(load, attribute) for load in loads[name]])

    def latencies(name: str, label: str, baseline: str, baseline_label: str) -> list[Figure]:
        return [
            Figure(
                f"  {label} latency {attribute[:3]}",
                med(name, attribute),
                "ms",
                baseline=baseline_label,
                baseline_value=med(baseline, attribute),
                runs=[getattr(load, attribute) for load in loads[name]],
            )
            for attribute in ("p50_ms", "p99_ms")
        ]

    return [
        Figure(
            "HTTP commands/s (register-customer, full pipeline)",
            med("commands", "rate"),
            "req/s",
            baseline="same endpoint, COMMAND_PIPELINE=bare",
            baseline_value=med("bare", "rate"),
            target="report",
            runs=[load.rate for load in loads["commands"]],
        ),
        *latencies("commands", "HTTP commands", "bare", "COMMAND_PIPELINE=bare"),
        Figure(
            "HTTP queries/s (GET /api/customers/<id>)",
            med("queries", "rate"),
            "req/s",
            baseline="GET /livez (gunicorn + Django, no view work)",
            baseline_value=med("livez", "rate"),
            target=">= 1,000/s",
            met=at_least(1000)(med("queries", "rate")),
            runs=[load.rate for load in loads["queries"]],
        ),
        Figure(
            "  HTTP queries/s, the query pipeline's cost",
            med("queries", "rate"),
            "req/s",
            baseline="same endpoint, QUERY_PIPELINE=bare",
            baseline_value=med("queries_bare", "rate"),
            runs=[load.rate for load in loads["queries_bare"]],
        ),
        *latencies("queries", "HTTP queries", "livez", "GET /livez"),
    ]
