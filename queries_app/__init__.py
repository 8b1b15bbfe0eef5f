"""The read side: projections of events into read tables, and the queries that read them."""
