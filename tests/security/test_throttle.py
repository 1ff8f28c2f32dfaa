"""The database-kept rate counter that every rate limit of the app stands on."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select

from extensions import db
from models import RateCounter, utcnow
from services import throttle
from tests.webtools import run_worker


def test_hits_of_a_key_count_up_within_their_window(ctx):
    with ctx():
        assert [throttle.hit("guess:192.0.2.1", window_seconds=60) for _ in range(3)] == [1, 2, 3]
        assert throttle.hit("guess:192.0.2.2", window_seconds=60) == 1  # another key counts apart


def test_a_new_window_starts_the_count_again(ctx):
    with ctx():
        start = utcnow()
        throttle.hit("k", window_seconds=60, now=start)
        assert throttle.hit("k", window_seconds=60, now=start + timedelta(seconds=59)) == 2
        assert throttle.hit("k", window_seconds=60, now=start + timedelta(seconds=61)) == 1


def test_reset_forgets_a_key(ctx):
    with ctx():
        throttle.hit("login:carl", window_seconds=60)
        throttle.reset("login:carl")
        assert throttle.hit("login:carl", window_seconds=60) == 1


def test_a_hit_counts_even_when_the_caller_rolls_back(ctx):
    with ctx():
        throttle.hit("k", window_seconds=60)
        db.session.rollback()
        assert throttle.hit("k", window_seconds=60) == 2


def test_concurrent_hits_each_get_their_own_count(app):
    def one_hit(_):
        with app.app_context():
            return throttle.hit("race", window_seconds=60)

    with ThreadPoolExecutor(max_workers=10) as pool:
        counts = sorted(pool.map(one_hit, range(40)))
    assert counts == list(range(1, 41))  # no two hits read the same count


def test_prune_deletes_only_windows_that_ended_long_ago(ctx):
    with ctx():
        now = utcnow()
        throttle.hit("old", window_seconds=60, now=now - timedelta(hours=2))
        throttle.hit("new", window_seconds=60, now=now)
        assert throttle.prune(older_than_seconds=3600, now=now) == 1
        assert throttle.hit("new", window_seconds=60, now=now) == 2


def test_over_limit_refuses_past_the_limit_and_reports_only_the_crossing_hit(ctx):
    crossings = []
    with ctx():
        verdicts = [throttle.over_limit("flood", limit=2, window_seconds=60,
                                        crossing=lambda: crossings.append(1))
                    for _ in range(5)]
    assert verdicts == [False, False, True, True, True]
    assert crossings == [1]  # one audit row for the whole flood, not one per refused hit


def test_a_client_key_counts_an_ipv6_host_by_its_64_and_ipv4_by_address():
    assert throttle.client_key("p", "2001:db8:1:2::1") == throttle.client_key("p", "2001:db8:1:2:ffff::9")
    assert throttle.client_key("p", "2001:db8:1:2::1") != throttle.client_key("p", "2001:db8:1:3::1")
    assert throttle.client_key("p", "192.0.2.1") != throttle.client_key("p", "192.0.2.2")
    assert throttle.client_key("p", "192.0.2.1") != throttle.client_key("q", "192.0.2.1")


def test_an_idle_worker_deletes_the_counters_of_long_ended_windows(app):
    with app.app_context():
        throttle.hit("login:old", window_seconds=60, now=utcnow() - timedelta(days=2))
        throttle.hit("login:new", window_seconds=60)
    run_worker(app)
    with app.app_context():
        assert set(db.session.scalars(select(RateCounter.key))) == {"login:new"}
