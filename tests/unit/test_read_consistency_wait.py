"""The bounded wait behind X-Consistency-Token, on a fake clock."""

from queries_app.consistency import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(round(seconds, 3))
        self.now += seconds


def test_it_returns_as_soon_as_the_probe_is_true():
    # given
    clock = FakeClock()
    answers = iter([False, False, True])

    # when
    done = wait_until(lambda: next(answers), timeout=2, clock=clock, sleep=clock.sleep)

    # then
    assert done is True
    assert clock.pauses == [0.002, 0.003]


def test_it_gives_up_at_the_bound_with_growing_then_capped_pauses():
    # given
    clock = FakeClock()

    # when
    done = wait_until(lambda: False, timeout=0.5, clock=clock, sleep=clock.sleep)

    # then
    assert done is False
    assert clock.pauses[:9] == [0.002, 0.003, 0.005, 0.007, 0.01, 0.015, 0.023, 0.034, 0.05]
    assert set(clock.pauses[9:-1]) == {0.05}  # capped
    assert clock.pauses[-1] <= 0.05  # the rest of the bound, no more
    assert round(clock.now, 6) == 0.5


def test_a_zero_bound_still_looks_once():
    assert wait_until(lambda: True, timeout=0, clock=FakeClock(), sleep=lambda s: None) is True
