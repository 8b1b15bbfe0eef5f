"""The retry schedule: exponential from a base the settings give, capped, and spanning at least a day by default."""

from datetime import timedelta

from webhooks_app.deliveries import retry_delay


def test_each_retry_waits_about_twice_as_long_as_the_one_before_up_to_the_cap(settings):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 5
    settings.WEBHOOKS_RETRY_MAX_INTERVAL_SECONDS = 6 * 3600
    delays = [retry_delay(attempt).total_seconds() for attempt in range(1, 20)]
    for attempt, delay in enumerate(delays, start=1):
        expected = min(5 * 2 ** (attempt - 1), 6 * 3600)
        assert expected * 0.9 <= delay <= expected * 1.1, (attempt, delay)


def test_with_the_default_settings_a_delivery_is_retried_for_more_than_a_day():
    # given: the schedule of a delivery whose every attempt fails, until its retry window closes
    from django.conf import settings

    window = timedelta(seconds=settings.WEBHOOKS_RETRY_FOR_SECONDS)
    elapsed, attempts = timedelta(0), 1
    while elapsed + retry_delay(attempts) <= window:
        elapsed += retry_delay(attempts)
        attempts += 1

    # then: the last attempt comes more than a day after the first, after a couple dozen tries, not thousands
    assert elapsed > timedelta(days=1)
    assert 15 <= attempts <= 40


def test_a_shortened_base_shortens_every_wait(settings):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 0.2
    assert retry_delay(1) <= timedelta(seconds=0.22)
    assert retry_delay(3) <= timedelta(seconds=0.9)
