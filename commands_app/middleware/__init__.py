"""The mediator's middlewares, one module each, in pipeline order (see commands_app/bootstrap.py)."""
