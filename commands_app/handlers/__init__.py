"""Command handlers, one module per command with its REGISTRATION; they never import each other.

A handler is `handler(command, uow, **collaborators) -> Result`, written against commands_app.ports only.
"""
