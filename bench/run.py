"""Run the benchmarks: print the table, and write docs/benchmarks.md with the machine's details.

    python -m bench.run                  # every figure, 3 runs each (make bench, ~20 min)
    python -m bench.run --quick          # a smoke run of every figure (make bench-quick, ~3 min)
    python -m bench.run --only relay     # one module (repeatable)

The bench creates its own database (cqrs_bench) and uses Redis DBs 4 and 5 (--database, --cache-db and
--broker-db choose others, so two runs can share a machine); it drops and flushes them at the
end. A full run writes docs/benchmarks.md; a quick or partial one writes var/bench/benchmarks.md unless
--output says otherwise.
"""

import argparse
import importlib
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import environment
from bench.context import Context
from bench.report import BENCH_END, BENCH_START, bench_markdown, text_table, write_section
from bench.results import Section

MODULES = [
    "command_path",
    "http_load",
    "relay",
    "projection",
    "replay",
    "end_to_end",
    "orders",
    "killed_worker",
    "memory",
]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=MODULES, metavar="NAME", help=f"one of {MODULES}")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (small sizes, one run each)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers for the HTTP figures")
    parser.add_argument(
        "--memory-minutes", type=float, default=4.0, help="time cap of the memory figure (100,000 commands need ~15)"
    )
    parser.add_argument(
        "--replay-events", type=int, help="events in the replay figure's log (default 1,000,000; 50,000 with --quick)"
    )
    parser.add_argument("--output", type=Path, help="where to write the report (markdown)")
    parser.add_argument("--database", default="cqrs_bench", help="the bench's own database (created and dropped)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards, for a look")
    parser.add_argument("--cache-db", type=int, default=4, help="Redis DB for the cache (flushed; default 4)")
    parser.add_argument("--broker-db", type=int, default=5, help="Redis DB for the broker (flushed; default 5)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    names = args.only or MODULES
    repeat = 1 if args.quick and args.repeat == 3 else args.repeat
    partial = args.quick or bool(args.only)
    output = args.output or (environment.ROOT / ("var/bench/benchmarks.md" if partial else "docs/benchmarks.md"))
    world = environment.new_world(args.database, cache_db=args.cache_db, broker_db=args.broker_db)
    started, clock = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), time.monotonic()
    sections: list[Section] = []
    failed = False
    environment.create_database(world)
    try:
        environment.setup_django(world, log_to=world.workdir / "logs" / "bench.log")
        machine = environment.machine(world)
        print("\n".join(f"{k}: {v}" for k, v in machine.items()), flush=True)
        ctx = Context(
            world=world,
            quick=args.quick,
            repeat=repeat,
            web_workers=args.web_workers,
            memory_minutes=args.memory_minutes,
            replay_events=args.replay_events,
        )
        for name in names:
            print(f"\n== {name}", flush=True)
            module_started = time.monotonic()
            try:
                section = importlib.import_module(f"bench.{name}").run(ctx)
            except Exception:
                failed = True
                error = traceback.format_exc()
                print(error, file=sys.stderr, flush=True)
                section = Section(name, notes=[f"{name} failed:\n\n```\n{error[-3000:]}\n```"])
            sections.append(section)
            print(text_table([section]), flush=True)
            print(f"({time.monotonic() - module_started:.0f}s)", flush=True)
    finally:
        if not args.keep:
            environment.drop_database(world)
    seconds = time.monotonic() - clock
    print("\n" + text_table(sections), flush=True)
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    output.parent.mkdir(parents=True, exist_ok=True)
    markdown = bench_markdown(sections, machine, command=command.strip(), started=started, seconds=seconds)
    write_section(output, BENCH_START, BENCH_END, markdown)
    print(f"\nwrote {output} ({seconds / 60:.1f} min); logs in {world.workdir / 'logs'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
