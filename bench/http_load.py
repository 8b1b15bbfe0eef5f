"""HTTP through gunicorn: commands/s and every read endpoint's queries/s with p50/p99, pipelines on and off.

wrk (Debian: `apt-get install -y wrk`) drives 127.0.0.1 only, with Lua scripts under bench/wrk/: every command
has its own Idempotency-Key and email; each query endpoint is sent round robin over a file of paths. gunicorn
runs as in production (config/gunicorn.py: threaded workers, keep-alive; --workers from the bench's
--web-workers). The read models hold the business flow's data: a mixed event log (bench/backlog.py,
insert_mixed_events: products, customers, orders of several lines through their saga's events) rebuilt into them
by `replay_projections`, so orders have lines and timelines, the catalog has products to search, the best sellers
are ranked, and a STRONG query finds its aggregates' events in the log and its positions in the read side.
Per run: commands, each query endpoint and the /livez floor with the full pipelines, then commands and
GET /api/customers/<id> with the bare pipelines (bench/bare.py: the same endpoints without the mediator's
middlewares, and without the queries' authentication, scope check and rate limit). The queries' baselines are the
/livez floor (gunicorn and Django's middleware, no view work, no database) and, for the customer, the same
endpoint with the bare query pipeline.
"""

import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.core.management import call_command

from bench.backlog import MixedLog, insert_mixed_events
from bench.context import Context
from bench.environment import ROOT, reset_tables, vacuum_analyze
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


def seed_read_models(events: int) -> MixedLog:
    """The read models of a mixed log of `events` events, as the projections build them (replay_projections)."""
    log = insert_mixed_events(events)
    call_command("replay_projections", stdout=io.StringIO(), stderr=io.StringIO())
    vacuum_analyze("read_customer", "read_order", "read_product", "read_aggregate_position")
    return log


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    what: str


ENDPOINTS = [
    Endpoint("customer", "GET /api/customers/<id>", "EVENTUAL, by key, one statement"),
    Endpoint("order", "GET /api/orders/<id>", "STRONG: waits for the order's and its customer's newest events"),
    Endpoint("orders", "GET /api/orders?customer_id=", "EVENTUAL, a page of the customer's orders, newest first"),
    Endpoint("search", "GET /api/products?search=", "EVENTUAL, full-text search, ranked, a page of 50 at most"),
    Endpoint("best_sellers", "GET /api/products/best-sellers", "HIGHLY_EVENTUAL, cached (QUERY_CACHE_SECONDS)"),
]


def paths_files(log: MixedLog, names: dict[str, str], folder: Path) -> dict[str, Path]:
    """One file of paths per endpoint, over the keys of the mixed log."""
    terms = sorted({" ".join(name.lower().split()[-2:]) for name in names.values()})
    terms += sorted({name.lower().split()[-1] for name in names.values()})
    paths = {
        "customer": [f"/api/customers/{key}" for key in log.customers],
        "order": [f"/api/orders/{key}" for key in log.orders],
        "orders": [f"/api/orders?customer_id={key}" for key in log.customers],
        "search": [f"/api/products?search={term.replace(' ', '+')}" for term in terms],
        "best_sellers": [f"/api/products/best-sellers?limit={limit}" for limit in (10, 5, 20)],
    }
    files = {}
    for key, lines in paths.items():
        files[key] = folder / f"paths-{key}.txt"
        files[key].write_text("\n".join(lines) + "\n")
    return files


def run(ctx: Context) -> Section:
    require_wrk()
    from queries_app.models import ProductReadModel

    section = Section("HTTP through gunicorn")
    seconds = 4 if ctx.quick else 8
    connections = 2 * ctx.web_workers
    reset_tables()
    log = seed_read_models(20_000 if ctx.quick else 100_000)
    names = dict(ProductReadModel.objects.values_list("sku", "name"))
    files = paths_files(log, names, ctx.world.workdir)
    token = ctx.token
    loads: dict[str, list[Load]] = {
        "commands": [],
        "bare": [],
        "queries_bare": [],
        "livez": [],
        **{endpoint.key: [] for endpoint in ENDPOINTS},
    }
    for _ in range(ctx.repeat):
        for pipeline in ("full", "bare"):
            with processes(ctx.world) as group:
                port = group.gunicorn(workers=ctx.web_workers, app="bench.bare_wsgi" if pipeline == "bare" else None)
                wrk(port, "commands.lua", token, 2, connections)  # warm every worker up
                wrk(port, "queries.lua", token, 2, connections, str(files["customer"]))
                if pipeline == "bare":
                    loads["bare"].append(wrk(port, "commands.lua", token, seconds, connections))
                    loads["queries_bare"].append(
                        wrk(port, "queries.lua", token, seconds, connections, str(files["customer"]))
                    )
                    continue
                loads["commands"].append(wrk(port, "commands.lua", token, seconds, connections))
                for endpoint in ENDPOINTS:
                    load = wrk(port, "queries.lua", token, seconds, connections, str(files[endpoint.key]))
                    loads[endpoint.key].append(load)
                loads["livez"].append(wrk(port, "plain.lua", token, seconds, connections, path="/livez"))
    section.figures += figures(loads)
    errors = {name: sum(load.errors for load in runs) for name, runs in loads.items()}
    bare_p50 = median([load.p50_ms for load in loads["queries_bare"]])
    bare_p99 = median([load.p99_ms for load in loads["queries_bare"]])
    endpoints = "; ".join(
        f"{e.label} ({e.what}, {len(files[e.key].read_text().split())} paths): "
        f"p50 {median([x.p50_ms for x in loads[e.key]]):.2f} ms, p99 {median([x.p99_ms for x in loads[e.key]]):.2f} ms"
        for e in ENDPOINTS
    )
    section.notes.append(
        f"gunicorn {ctx.web_workers} workers (config/gunicorn.py: gthread, 2 threads each, keep-alive); wrk 2 "
        f"threads, {connections} connections, {seconds}s per measurement, {ctx.repeat} runs; no Celery worker "
        "runs (the outbox just fills). Commands are register-customer with a unique Idempotency-Key and email each. "
        f"The read models: {log.summary()}, rebuilt by replay_projections. Queries: {endpoints}. "
        f"Non-2xx or failed requests: {errors}. GET /api/customers/<id> through the bare pipeline: p50 "
        f"{bare_p50:.2f} ms, p99 {bare_p99:.2f} ms."
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
            baseline="same endpoint, bare pipeline",
            baseline_value=med("bare", "rate"),
            target="report",
            runs=[load.rate for load in loads["commands"]],
        ),
        *latencies("commands", "HTTP commands", "bare", "bare pipeline"),
        *[
            Figure(
                f"HTTP queries/s ({endpoint.label})" if endpoint.key == "customer" else f"  {endpoint.label}",
                med(endpoint.key, "rate"),
                "req/s",
                baseline="GET /livez (gunicorn + Django, no view work)",
                baseline_value=med("livez", "rate"),
                target=">= 1,000/s",
                met=at_least(1000)(med(endpoint.key, "rate")),
                runs=[load.rate for load in loads[endpoint.key]],
            )
            for endpoint in ENDPOINTS
        ],
        Figure(
            "  GET /api/customers/<id>, the query pipeline's cost",
            med("customer", "rate"),
            "req/s",
            baseline="same endpoint, bare pipeline",
            baseline_value=med("queries_bare", "rate"),
            runs=[load.rate for load in loads["queries_bare"]],
        ),
        *latencies("customer", "GET /api/customers/<id>", "livez", "GET /livez"),
    ]
