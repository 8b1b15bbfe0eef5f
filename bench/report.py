"""The table the bench prints and the docs/benchmarks.md it writes (the chaos run keeps its own section there)."""

import re
from collections.abc import Sequence
from pathlib import Path

from bench.results import Figure, Section, fmt

CHAOS_START, CHAOS_END = "<!-- chaos:start -->", "<!-- chaos:end -->"
# The chaos run's section in docs/benchmarks.md, by broker.
CHAOS_MARKERS = {
    "rabbitmq": (CHAOS_START, CHAOS_END),
    "redis": ("<!-- chaos-redis:start -->", "<!-- chaos-redis:end -->"),
}
BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"


def verdict(figure: Figure) -> str:
    return {True: "met", False: "MISSED", None: ""}[figure.met]


def rows(sections: Sequence[Section]) -> list[list[str]]:
    table = []
    for section in sections:
        for f in section.figures:
            table.append(
                [
                    f.name,
                    fmt(f.value, f.unit),
                    f.baseline,
                    fmt(f.baseline_value, f.unit) if f.baseline_value is not None else "",
                    fmt(f.ratio, "x") if f.ratio is not None else "",
                    f.target,
                    verdict(f),
                ]
            )
    return table


HEADER = ["figure", "median", "baseline (same run)", "baseline", "ratio", "target", ""]


def text_table(sections: Sequence[Section]) -> str:
    body = rows(sections)
    widths = [min(max(len(r[i]) for r in [HEADER, *body]), 60) for i in range(len(HEADER))]
    lines = ["  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [HEADER, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def bench_markdown(
    sections: Sequence[Section], machine: dict[str, str], *, command: str, started: str, seconds: float
) -> str:
    parts = [
        BENCH_START,
        f"## Run of `{command}`, {started} ({seconds / 60:.1f} min)",
        "",
        markdown_table(["machine", ""], [[k, v] for k, v in machine.items()]),
        "",
        "Every figure is the median of the runs; its baseline was measured in the same run, between them.",
        "",
        markdown_table(HEADER, rows(sections)),
        "",
    ]
    for section in sections:
        if not section.notes:
            continue
        parts += [f"### {section.title}", ""]
        for note in section.notes:
            parts += [note, ""]
    parts.append(BENCH_END)
    return "\n".join(parts)


INTRO = """# Benchmarks

Measured by `make bench` (bench/run.py; `make bench-quick` for a smoke run, `--only NAME` for one module) on
its own PostgreSQL database (`cqrs_bench`, created and dropped by the script) and Redis DBs 4 and 5; the chaos
run (`make chaos`, bench/chaos.py) uses `cqrs_chaos` and Redis DBs 6 and 7. The machine is shared and noisy:
each figure is the median of several runs and is reported against a baseline measured in the same run.
The test suite has no timed assertions; these numbers live here. The "bare" baselines run the pipelines
without their middlewares (bench/bare.py: in-process, and `gunicorn bench.bare_wsgi` over HTTP): bench-only
entry points, refused with DJANGO_SECURE on, since they turn off authentication, authorization and
idempotency; production code has no switch for them.

How each part scales past this machine, with these limits, is in docs/scaling.md.
"""


def write_section(path: Path, start: str, end: str, content: str) -> None:
    """Replace the section between the markers (or add it), keeping the rest of the file."""
    current = path.read_text() if path.exists() else INTRO
    block = content if content.startswith(start) else f"{start}\n{content}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(updated)
