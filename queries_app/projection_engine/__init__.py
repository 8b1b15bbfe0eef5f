"""The projection engine: what turns envelopes into read-model rows, exactly once and in per-aggregate order.

    projection.py  what a projection is (the aggregate types it follows, its tables, its handlers) and the
                   context its handlers get
    apply.py       applying a delivery's envelopes (batched per projection, one by one on failure), parking
    rows.py        where handlers read and write rows: database tables (locked, batched) or memory (a fold)
    replay.py      rebuilding read models from the event log beside the live ones, and verifying them

The projections themselves are in queries_app/projections/, one module each.
"""
