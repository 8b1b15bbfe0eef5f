"""The bench's report of PostgreSQL's costliest statements (bench/statements.py)."""

from bench.statements import SHOWN, Statement, report


def test_the_report_gives_per_order_figures_and_the_costliest_statements_first_as_counted():
    # given: what pg_stat_statements counted over 100 orders, costliest first, more statements than are shown
    counted = [
        Statement(
            "SELECT  id\n FROM  t WHERE k = ANY($1)",
            calls=300,
            rows=900,
            milliseconds=60.0,
            planning_milliseconds=15.0,
            blocks=2400,
        ),
        Statement("UPDATE t SET v = $1", calls=100, rows=100, milliseconds=40.0, planning_milliseconds=5.0, blocks=500),
        *(
            Statement(f"SELECT {n}", calls=1, rows=1, milliseconds=0.1, planning_milliseconds=0.0, blocks=0)
            for n in range(SHOWN + 5)
        ),
    ]

    # when
    note = report(counted, orders=100)

    # then: totals per order, planning's share, and one line per shown statement (whitespace folded)
    assert "4 statements and 1.02 ms per order, 20% of it planning" in note
    lines = note.split("```")[1].strip("\n").splitlines()
    assert len(lines) == 1 + SHOWN
    assert lines[1].split() == [
        "0.600",
        "25",
        "3.00",
        "3.0",
        "8",
        "SELECT",
        "id",
        "FROM",
        "t",
        "WHERE",
        "k",
        "=",
        "ANY($1)",
    ]
    assert lines[2].split()[:5] == ["0.400", "12", "1.00", "1.0", "5"]


def test_a_report_of_nothing_says_so():
    assert report([], orders=100) == "pg_stat_statements counted nothing."
