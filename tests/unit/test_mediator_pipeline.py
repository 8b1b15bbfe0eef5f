"""The mediator and each middleware as small units: order, authorization, tracing, metrics, result mapping."""

import logging
import uuid

import pytest
import structlog
from prometheus_client import REGISTRY

import sqlkit
from commands_app.bootstrap import COMMANDS, ERROR_STATUS, build_mediator
from commands_app.commands import RegisterCustomer
from commands_app.mediator import CommandContext, CommandOutcome, HandlerAlreadyRegistered, HandlerRegistry, Mediator
from commands_app.middleware.authorization import AuthorizationMiddleware
from commands_app.middleware.idempotency import IdempotencyMiddleware
from commands_app.middleware.idempotency_store import CacheFastPath
from commands_app.middleware.logging import LoggingMiddleware
from commands_app.middleware.metrics import MetricsMiddleware
from commands_app.middleware.result_mapper import ResultMapper
from commands_app.middleware.tracing import TracingMiddleware
from commands_app.result import Error, Ok

CONTEXT = CommandContext(client_id="c", scopes=frozenset({"write"}), correlation_id="corr-1")


def a_command() -> RegisterCustomer:
    return RegisterCustomer(idempotency_key=uuid.uuid4(), first_name="A", last_name="B", email="a@b.c")


def ok(command, context):
    return CommandOutcome(status_code=200, body={"ok": True})


def test_the_pipeline_runs_in_the_documented_order():
    from django.core.cache import caches

    mediator = build_mediator(fast_path=CacheFastPath(caches["default"]))

    assert [type(m) for m in mediator.middlewares] == [
        LoggingMiddleware,
        TracingMiddleware,
        MetricsMiddleware,
        AuthorizationMiddleware,
        IdempotencyMiddleware,
    ]


def test_middlewares_wrap_outermost_first():
    # given
    seen: list[str] = []

    def recorder(name):
        def middleware(command, context, call_next):
            seen.append(f"{name} in")
            outcome = call_next(command, context)
            seen.append(f"{name} out")
            return outcome

        return middleware

    def innermost(command, context):
        seen.append("handler")
        return CommandOutcome(status_code=200)

    # when
    Mediator(middlewares=[recorder("a"), recorder("b")], innermost=innermost).send(a_command(), CONTEXT)

    # then
    assert seen == ["a in", "b in", "handler", "b out", "a out"]


def test_the_registry_refuses_a_second_handler_for_a_command():
    registry = HandlerRegistry()
    registry.register(RegisterCustomer, lambda c, uow: Ok({}))

    with pytest.raises(HandlerAlreadyRegistered):
        registry.register(RegisterCustomer, lambda c, uow: Ok({}))


def test_every_command_has_a_policy_and_a_handler():
    assert all(registration.scopes and registration.handler for registration in COMMANDS.values())


class TestAuthorization:
    policy = {RegisterCustomer: frozenset({"write"})}

    def test_a_client_with_the_scope_passes(self):
        outcome = AuthorizationMiddleware(self.policy)(a_command(), CONTEXT, ok)
        assert outcome.status_code == 200

    def test_a_client_without_the_scope_is_refused_before_the_handler(self):
        reader = CommandContext(client_id="c", scopes=frozenset({"read"}), correlation_id="x")
        reached = []

        outcome = AuthorizationMiddleware(self.policy)(a_command(), reader, lambda c, x: reached.append(1) or ok(c, x))

        assert (outcome.status_code, outcome.error.code, reached) == (403, "FORBIDDEN", [])

    def test_a_command_without_a_policy_is_refused(self):
        outcome = AuthorizationMiddleware({})(a_command(), CONTEXT, ok)
        assert outcome.status_code == 403


def test_tracing_binds_correlation_and_causation_ids_for_the_handlers_log_lines():
    command = a_command()
    bound = {}

    def capture(c, x):
        bound.update(structlog.contextvars.get_contextvars())
        return ok(c, x)

    TracingMiddleware()(command, CONTEXT, capture)

    assert bound["correlation_id"] == "corr-1"
    assert bound["command_id"] == str(command.command_id)
    assert "correlation_id" not in structlog.contextvars.get_contextvars()


def test_metrics_observe_latency_by_command_and_outcome():
    def count() -> float:
        labels = {"command": "RegisterCustomer", "outcome": "EMAIL_TAKEN"}
        return REGISTRY.get_sample_value("cqrs_command_duration_seconds_count", labels) or 0.0

    before = count()
    MetricsMiddleware()(a_command(), CONTEXT, lambda c, x: CommandOutcome(422, error=Error("EMAIL_TAKEN", "taken")))

    assert count() == before + 1


def test_logging_writes_one_line_per_command_with_its_outcome(caplog):
    with caplog.at_level(logging.INFO, logger="commands"):
        LoggingMiddleware()(a_command(), CONTEXT, ok)

    lines = [r.msg for r in caplog.records if r.name == "commands"]
    assert len(lines) == 1
    assert lines[0]["event"] == "command.completed" and lines[0]["status"] == ok(None, None).status_code


def test_logging_writes_the_traceback_of_a_command_that_crashed(caplog):
    def crash(command, context):
        raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="commands"), pytest.raises(RuntimeError):
        LoggingMiddleware()(a_command(), CONTEXT, crash)

    assert [r.msg["event"] for r in caplog.records if r.name == "commands"] == ["command.crashed"]


class NothingStaged:
    """A unit of work for a handler that reads and writes nothing."""

    def stage_events(self):
        return ()


class TestResultMapper:
    def mapper(self, result):
        registry = HandlerRegistry()
        registry.register(RegisterCustomer, lambda command, uow: result)
        return ResultMapper(
            registry=registry,
            success_status={RegisterCustomer: 201},
            error_status={"VERSION_CONFLICT": 409},
            unit_of_work=lambda command, context, transaction: NothingStaged(),
        )

    def test_ok_becomes_the_commands_success_status(self):
        outcome = self.mapper(Ok({"customer_id": "x"}))(a_command(), CONTEXT.within(sqlkit.Transaction()))
        assert (outcome.status_code, outcome.body, outcome.error) == (201, {"customer_id": "x"}, None)

    def test_error_codes_map_to_the_statuses_they_were_registered_with(self):
        mapper = self.mapper(Error("VERSION_CONFLICT", "moved"))
        outcome = mapper(a_command(), CONTEXT.within(sqlkit.Transaction()))
        assert (outcome.status_code, outcome.error.code) == (409, "VERSION_CONFLICT")
        assert mapper.status_for(Error("SOMETHING_ELSE", "")) == 422


def test_each_aggregate_brings_its_error_codes_and_not_found_is_one_spelling_at_404():
    assert ERROR_STATUS["EMAIL_TAKEN"] == 422
    assert ERROR_STATUS["ORDER_NOT_PENDING"] == 409
    assert ERROR_STATUS["PAYMENT_PROVIDER_UNAVAILABLE"] == 503
    assert {code: status for code, status in ERROR_STATUS.items() if code.endswith("_NOT_FOUND")} == {
        "CUSTOMER_NOT_FOUND": 404,
        "PRODUCT_NOT_FOUND": 404,
        "ORDER_NOT_FOUND": 404,
    }
