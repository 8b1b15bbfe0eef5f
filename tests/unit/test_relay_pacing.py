"""The relay waits before a run only while events arrive fast (outbox_app/pacing.py), on a fake clock."""

from outbox_app.pacing import Pacer

GAP = 0.05
ABOVE = 120.0  # events per second (the setting's default)
RUN = 0.012  # what a relay run of a few events takes here


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Relay:
    """Commits at a steady rate of events; a run relays what was committed until it claims."""

    def __init__(self, events_per_second: float) -> None:
        self.clock = Clock()
        self.pacer = Pacer(clock=self.clock)
        self.rate = events_per_second
        self.committed_until = 0.0

    def run(self, *, idle_before: float) -> float:
        self.clock.now += idle_before
        wait = self.pacer.wait_before_run(GAP, ABOVE)
        self.clock.now += wait
        claimed = round((self.clock.now - self.committed_until) * self.rate)
        self.committed_until = self.clock.now
        self.clock.now += RUN
        self.pacer.run_ended(claimed)
        return wait


def test_a_relay_nudged_now_and_then_never_waits():
    # given: 10 orders/s, 6 events and two nudges each: a run every 50 ms
    relay = Relay(events_per_second=60)

    # when
    waits = [relay.run(idle_before=0.038) for _ in range(200)]

    # then
    assert set(waits) == {0.0}
    assert 40 < relay.pacer.rate < 80


def test_a_relay_under_a_burst_waits_and_stops_waiting_when_it_ends():
    # given: 85 orders/s, runs back to back
    relay = Relay(events_per_second=500)

    # when
    burst = [relay.run(idle_before=0.0) for _ in range(50)]
    relay.rate = 60
    after = [relay.run(idle_before=0.038) for _ in range(20)]

    # then: a few runs to notice, then every run waits; after it, runs start at once again
    assert burst[0] == 0.0
    assert set(burst[5:]) == {GAP}
    assert set(after[8:]) == {0.0}


def test_waiting_does_not_keep_itself_going():
    # given: paced runs at a rate that arrived just above the line and then dropped below it
    relay = Relay(events_per_second=400)
    for _ in range(20):
        relay.run(idle_before=0.0)

    # when: the events slow to 100/s while a nudge is always waiting (runs back to back, each after its wait)
    relay.rate = 100
    waits = [relay.run(idle_before=0.0) for _ in range(20)]

    # then
    assert waits[0] == GAP
    assert set(waits[8:]) == {0.0}


def test_no_gap_means_no_wait():
    clock = Clock()
    pacer = Pacer(clock=clock)
    for _ in range(50):
        assert pacer.wait_before_run(0.0, ABOVE) == 0.0
        clock.now += RUN
        pacer.run_ended(100)
