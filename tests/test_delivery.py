"""Delivery at the provider's pace: send slots shared through the database, a provider's "slow down" that
holds the gateway and uses no attempt, jittered backoff, and a text that stays the same on every try."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from extensions import db
from models import Channel, GatewayPace, Message, MessageKind, MessageStatus, StaffUser, utcnow
from services import delivery, message_templates, pace
from tests.support import configure_sms, queue_sms_links, signed_in_the_past
from tests.webtools import run_worker
from tools.fake_providers import FakeVonage

VONAGE = {"api_key": "key123", "api_secret": "secret456", "sender": "Provisio"}


@pytest.fixture
def vonage(app, admin_id):
    with FakeVonage("key123", "secret456") as fake:
        configure_sms(app, "vonage", vonage={**VONAGE, "base_url": fake.base_url})
        yield fake


def rows(app, ids: list[int]) -> list[Message]:
    with app.app_context():
        found = list(db.session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)))
        db.session.expunge_all()
        return found


def make_due(app) -> None:
    with app.app_context():
        db.session.execute(update(Message).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


# -- the pace ------------------------------------------------------------------------------------

def test_concurrent_senders_get_one_slot_each_a_rate_apart(app):
    delays: list[float] = []
    start = threading.Barrier(5)

    def sender() -> None:
        with app.app_context():
            start.wait(timeout=10)
            delays.append(pace.turn("vonage", rate=1))

    threads = [threading.Thread(target=sender) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # At one a second, five senders asking at once wait about 0, 1, 2, 3 and 4 seconds.
    assert sorted(round(delay) for delay in delays) == [0, 1, 2, 3, 4]


def test_a_process_hands_its_threads_slots_a_rate_apart_and_reserves_them_a_block_at_a_time(app, monkeypatch):
    reservations = []
    turn = pace.turn
    monkeypatch.setattr(pace, "turn", lambda *args: reservations.append(args) or turn(*args))
    slots: list[float] = []

    def sender() -> None:
        with app.app_context():
            for _ in range(25):
                slots.append(pace._next_slot("vonage", 200))

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    slots.sort()
    gaps = [later - earlier for earlier, later in zip(slots, slots[1:], strict=False)]
    assert len(slots) == 100 and min(gaps) >= pace.interval(200) * 0.999  # never two in one slot's time
    assert len(reservations) < 100 and {count for *_, count in reservations} == {20}  # 0.1 s of 200/s


def test_a_hold_pushes_the_next_slot_past_the_wait_and_other_gateways_keep_their_pace(app):
    with app.app_context():
        pace.turn("vonage", rate=10)
        pace.hold("vonage", 30)
        assert 29 < pace.turn("vonage", rate=10) <= 30
        assert pace.turn("clickatell", rate=10) == 0
        assert db.session.get(GatewayPace, "clickatell") is not None


def test_a_gateway_without_a_rate_never_waits(app):
    with app.app_context():
        pace.hold("smtp", 60)
        assert pace.next_turn("smtp", None) == 0


# -- throttling and backoff ------------------------------------------------------------------------

def test_throttled_sends_use_no_attempt_and_the_message_is_sent_after_more_than_the_maximum(
        app, vonage, make_account):
    [message_id] = queue_sms_links(app, [make_account(wizard=True)])
    vonage.throttle_wait_ms = 20
    throttles = app.config["OUTBOX_MAX_ATTEMPTS"] + 2
    vonage.fail_next(throttles, "throttle")
    for _ in range(throttles):
        with app.app_context():
            assert delivery.deliver_due() == 1
        [waiting] = rows(app, [message_id])
        assert (waiting.status, waiting.attempts) == (MessageStatus.QUEUED, 0)
        assert "Throughput Rate Exceeded" in waiting.last_error
        make_due(app)
    with app.app_context():
        delivery.deliver_due()
    [sent] = rows(app, [message_id])
    assert (sent.status, sent.attempts, sent.last_error) == (MessageStatus.SENT, 1, None)
    assert len(vonage.accepted) == 1


def test_a_throttled_message_waits_at_least_the_providers_wait_and_holds_the_gateway(
        app, vonage, make_account):
    [message_id] = queue_sms_links(app, [make_account(wizard=True)])
    vonage.throttle_wait_ms = 30_000
    vonage.fail_next(1, "throttle")
    before = utcnow()
    with app.app_context():
        delivery.deliver_due()
        assert pace.turn("vonage", rate=1000) > 25  # every sender of the gateway waits too
    [waiting] = rows(app, [message_id])
    assert before + timedelta(seconds=30) <= waiting.next_attempt_at <= utcnow() + timedelta(seconds=60)


def test_messages_that_fail_together_retry_apart_within_their_backoff(app, vonage, make_account):
    ids = queue_sms_links(app, [make_account(wizard=True) for _ in range(8)])
    vonage.fail_next(8)  # 503 for each
    before = utcnow()
    with app.app_context():
        assert delivery.deliver_due() == 8
    backoff = timedelta(seconds=app.config["OUTBOX_BACKOFF_SECONDS"])
    retries = [row.next_attempt_at for row in rows(app, ids)]
    assert all(before + backoff / 2 <= at <= utcnow() + backoff for at in retries)
    assert len(set(retries)) == 8  # jittered: no two come back at the same instant


def test_a_sender_waiting_for_its_slot_gives_it_up_when_the_worker_stops(app, vonage, make_account):
    queue_sms_links(app, [make_account(wizard=True)])
    stop = threading.Event()
    with app.app_context():
        pace.hold("vonage", 5)
        [prepared] = delivery.prepare(delivery.claim())
        threading.Timer(0.2, stop.set).start()
        assert delivery.send(prepared, stop) is None  # back to the outbox, never sent
    assert vonage.requests == []


def test_a_gateway_held_past_the_lease_sends_nothing_and_its_backlog_waits_without_pushing_the_hold_out(
        app, vonage, make_account):
    ids = queue_sms_links(app, [make_account(wizard=True) for _ in range(20)])
    with app.app_context():
        pace.hold("vonage", 600)  # a provider's Retry-After of ten minutes
        assert delivery.deliver_due() == 20
        # No slot was taken for messages that will not be sent now: the gateway is free in 600 s, not
        # in 600 s plus twenty slots (a backlog taking slots would never let it come back).
        assert 595 < pace._ahead("vonage") <= 600
    assert vonage.requests == []
    for waiting in rows(app, ids):
        assert (waiting.status, waiting.attempts) == (MessageStatus.QUEUED, 0)
        assert waiting.next_attempt_at >= utcnow() + timedelta(seconds=590)
        assert waiting.last_error == ("Waiting for a free send slot of vonage (its send rate, or a wait it "
                                      "asked for).")


def test_a_message_a_provider_keeps_holding_for_a_day_fails_with_the_reason(app, vonage, make_account):
    [message_id] = queue_sms_links(app, [make_account(wizard=True)])
    with app.app_context():
        db.session.execute(update(Message).values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    vonage.throttle_wait_ms = 10
    vonage.fail_next(1, "throttle")
    with app.app_context():
        delivery.deliver_due()
    [failed] = rows(app, [message_id])
    assert failed.status is MessageStatus.FAILED and failed.text_encrypted is None
    assert failed.last_error.startswith("Given up after 24 hours of waiting for the provider: Vonage:")


# -- the same text on every try ---------------------------------------------------------------------

def test_a_message_retried_after_its_worker_died_sends_the_text_of_its_first_try(app, vonage, make_account):
    [message_id] = queue_sms_links(app, [make_account(wizard=True)])
    with app.app_context(), signed_in_the_past(hours=1):
        [first_try] = delivery.prepare(delivery.claim())  # rendered, then this worker dies
    with app.app_context():
        admin = db.session.scalar(select(StaffUser).where(StaffUser.username == "alice"))
        message_templates.save(MessageKind.LINK, Channel.SMS, "",
                               "A new wording: {{ link }}", actor=admin)
        db.session.execute(update(Message).values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()

    run_worker(app)

    [sms] = vonage.accepted
    assert sms["text"] == first_try.outgoing.body and "A new wording" not in sms["text"]
    [sent] = rows(app, [message_id])
    assert (sent.status, sent.attempts) == (MessageStatus.SENT, 2)
    assert sent.text_encrypted is None and sent.link_nonce_encrypted is None  # the link's text is gone


def test_the_kept_text_is_encrypted(app, vonage, make_account):
    queue_sms_links(app, [make_account(wizard=True)])
    with app.app_context():
        [prepared] = delivery.prepare(delivery.claim())
        stored = db.session.scalar(select(Message.text_encrypted))
    link = prepared.outgoing.body.split()[-1]
    assert stored and link.startswith("https://") and link not in stored
    assert "/m/" not in repr(prepared)  # a traceback or a log line of it shows no link


def test_a_message_another_worker_claimed_after_its_lease_ran_out_is_not_handed_back(
        app, vonage, make_account):
    [message_id] = queue_sms_links(app, [make_account(wizard=True)])
    with app.app_context():
        [stale] = delivery.prepare(delivery.claim())
        later = utcnow() + timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"] + 1)
        assert delivery.claim(now=later) == [message_id]  # another worker, after the lease ran out
        delivery.release([stale])  # the first one stops late: the message is not its to hand back
        assert db.session.get(Message, message_id).lease_until is not None
        [fresh] = delivery.prepare([message_id])
        delivery.release([fresh])
        assert db.session.get(Message, message_id).lease_until is None
