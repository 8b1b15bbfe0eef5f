"""The transactional outbox: events written with their aggregate, relayed to the bus, kept as the event log."""
