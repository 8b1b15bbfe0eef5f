"""The write side: commands through the mediator pipeline into aggregates and outbox rows."""
