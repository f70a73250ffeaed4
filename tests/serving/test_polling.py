"""Pollers wait a jittered period, so pollers started together drift apart."""
import threading
import time

from recsys.serving.polling import JITTER, jittered, wait_next


def test_a_jittered_period_is_at_most_the_period_and_at_least_its_jitter_share_less():
    assert jittered(30.0, 0.2, draw=lambda: 0.0) == 30.0
    assert jittered(30.0, 0.2, draw=lambda: 0.5) == 27.0
    assert abs(jittered(30.0, 0.2, draw=lambda: 1.0) - 24.0) < 1e-9


def test_two_pollers_with_the_same_period_get_different_waits():
    waits = [jittered(30.0) for _ in range(1000)]
    assert min(waits) >= 30.0 * (1 - JITTER) and max(waits) <= 30.0  # a change applies within
    assert len(set(waits)) > 990
    assert max(waits) - min(waits) > 30.0 * JITTER * 0.9  # spread over the range, not one value


def test_a_stopped_poller_ends_without_waiting_its_period():
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    assert wait_next(stop, 60.0) is True
    assert time.monotonic() - started < 1.0
    assert wait_next(threading.Event(), 0.01) is False
