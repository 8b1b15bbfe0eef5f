"""The nudger: commits ask, a thread of its own sends; requests during a send fold into one more send after it."""

import threading
import time

from outbox_app.outbox import Nudger
from tests.conftest import eventually


class HeldSend:
    """A fake send that counts its calls and blocks inside each one until the test lets it return."""

    def __init__(self) -> None:
        self.calls = 0
        self.inside = threading.Semaphore(0)
        self.may_return = threading.Semaphore(0)

    def __call__(self) -> None:
        self.calls += 1
        self.inside.release()
        self.may_return.acquire(timeout=10)


def test_a_request_is_sent_from_the_nudgers_own_thread():
    # given
    threads: list[str] = []
    nudger = Nudger(lambda: threads.append(threading.current_thread().name))

    # when
    nudger.request()

    # then
    assert eventually(lambda: threads) == ["outbox-nudger"]


def test_requests_that_arrive_while_a_nudge_is_sent_fold_into_one_more_nudge_after_it():
    # given: a first nudge is being sent
    send = HeldSend()
    nudger = Nudger(send)
    nudger.request()
    assert send.inside.acquire(timeout=10)

    # when: three commits ask meanwhile
    for _ in range(3):
        nudger.request()
    send.may_return.release()

    # then: one more nudge, sent after them, and none owed beyond it
    assert send.inside.acquire(timeout=10)
    assert send.calls == 2
    assert not nudger._wanted.is_set()  # white box: nothing left that would make a third
    send.may_return.release()


def test_a_failing_send_does_not_stop_the_nudger():
    calls: list[int] = []

    def send() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Redis went away")

    nudger = Nudger(send)
    nudger.request()
    eventually(lambda: len(calls) == 1)
    nudger.request()

    assert eventually(lambda: len(calls) == 2)


def test_requests_within_the_minimum_interval_after_a_nudge_fold_into_one_sent_when_it_ends():
    # given: a nudge was just sent, and the nudger waits 0.3 s before the next
    sent_at: list[float] = []
    nudger = Nudger(lambda: sent_at.append(time.monotonic()), min_interval=lambda: 0.3)
    nudger.request()
    eventually(lambda: sent_at)

    # when: three commits ask right after it
    for _ in range(3):
        nudger.request()

    # then: one more nudge, not before the interval is over, and no third
    assert eventually(lambda: len(sent_at) == 2)
    assert sent_at[1] - sent_at[0] >= 0.3
    time.sleep(0.4)
    assert len(sent_at) == 2


def test_commits_inside_one_relay_ask_the_relay_once_when_the_block_ends(monkeypatch, settings):
    # given: the nudges this process would hand to its nudger thread, recorded instead of sent
    from outbox_app import outbox

    sent = []
    monkeypatch.setattr(outbox._nudger, "request", lambda: sent.append("nudge"))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.OUTBOX_RELAY_HERE_AFTER_IDLE = 0

    # when: three commits inside the block (nested once), then one after it
    with outbox.one_relay():
        outbox.nudge_relay()
        with outbox.one_relay():
            outbox.nudge_relay()
        outbox.nudge_relay()
        assert sent == []
    outbox.nudge_relay()

    # then
    assert sent == ["nudge", "nudge"]
