"""Sagas: persisted multi-step business processes that send commands only through the mediator."""
