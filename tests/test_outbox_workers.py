"""Worker processes over many queued SMS: two at once send each message exactly once, together at the
pace the provider allows; a stopped worker finishes its sends under way and hands back the rest at once.

Runs on whichever database the suite runs on (SQLite, and PostgreSQL in CI), with real `flask worker`
processes and a local server speaking Vonage's API.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import func, select

from extensions import db, vault
from models import Account, Channel, Message, MessageKind, MessageStatus
from services import messaging, settings, staff
from tests.support import KEY
from tools.fake_providers import FakeVonage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESSAGES = 1000


def queue_sms(app, admin_id: int, group_id: int, base_url: str, count: int = MESSAGES,
              rate: int = 10_000) -> set[str]:
    """Point SMS at the fake Vonage (sending at most `rate` a second), make `count` accounts and queue one
    link SMS to each."""
    with app.app_context():
        settings.save({"public_base_url": "https://activate.example.test",
                       "sms": {"gateway": "vonage", "vonage": {
                           "api_key": "key", "api_secret_encrypted": vault.encrypt("secret"),
                           "sender": "Provisio", "base_url": base_url, "rate": rate}}}, actor="test")
        password = vault.encrypt("Sip-Password-1234567")
        rows = [Account(username=f"8{i:07d}", callerid=f"+4178{i:07d}", password_encrypted=password,
                        group_id=group_id, wizard=True, enabled=False, security_model="end-to-end")
                for i in range(count)]
        db.session.add_all(rows)
        db.session.commit()
        actor = staff.get(admin_id)
        for account in rows:
            messaging.queue(account, MessageKind.LINK, Channel.SMS, actor=actor)
        return {account.callerid.removeprefix("+") for account in rows}


def worker_env(database_url: str) -> dict[str, str]:
    # A worker started from the environment is no TESTING app: it gets a key that passes the rule.
    return {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": secrets.token_urlsafe(48),
            "PROVISIO_ENCRYPTION_KEYS": KEY, "PROVISIO_ENV": "testing", "FLASK_APP": "app"}


def test_two_workers_over_a_thousand_messages_send_each_exactly_once(app, database_url, admin_id, group):
    with FakeVonage("key", "secret") as vonage:
        recipients = queue_sms(app, admin_id, group, vonage.base_url)
        workers = [subprocess.Popen([sys.executable, "-m", "flask", "worker", "--once", "--threads", "3"],
                                    cwd=ROOT, env=worker_env(database_url), text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outputs = [worker.communicate(timeout=600) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    handled = [int(re.search(r"Handled (\d+) tasks", out).group(1)) for out, _ in outputs]
    assert sum(handled) == MESSAGES and min(handled) > 0, handled  # both workers took a share
    sent_to = Counter(sms["to"] for sms in vonage.accepted)
    assert set(sent_to) == recipients and set(sent_to.values()) == {1}
    with app.app_context():
        rows = db.session.execute(select(Message.status, Message.attempts, Message.provider_id)).all()
    assert len(rows) == MESSAGES
    assert {(status, attempts) for status, attempts, _ in rows} == {(MessageStatus.SENT, 1)}
    assert {provider_id for _, _, provider_id in rows} == {sms["message-id"] for sms in vonage.accepted}


def start_workers(database_url: str, count: int, threads: int = 3) -> list[subprocess.Popen]:
    """`count` long-running `flask worker` processes, as systemd runs them."""
    command = [sys.executable, "-m", "flask", "worker", "--threads", str(threads), "--idle", "0.2"]
    return [subprocess.Popen(command, cwd=ROOT, env=worker_env(database_url), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(count)]


def wait_until(condition, timeout: float, workers: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        assert all(worker.poll() is None for worker in workers), "a worker exited"
        time.sleep(0.2)


def stop(workers: list[subprocess.Popen]) -> list[tuple[str, str]]:
    """SIGTERM each worker, as `systemctl stop` does, and collect what it printed."""
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    return [worker.communicate(timeout=60) for worker in workers]


def count_sent(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Message.status == MessageStatus.SENT))


RATE = 5
PACED = 300


def test_three_hundred_messages_through_a_provider_taking_five_a_second_arrive_once_each_at_its_pace(
        app, database_url, admin_id, group):
    with FakeVonage("key", "secret") as vonage:
        vonage.rate_limit = RATE
        recipients = queue_sms(app, admin_id, group, vonage.base_url, count=PACED, rate=RATE)
        workers = start_workers(database_url, count=2)
        try:
            # Bounded well below the 7.5 minutes unpaced retries took, and above the 60 s the limit needs.
            wait_until(lambda: count_sent(app) == PACED, timeout=PACED / RATE * 2, workers=workers)
        finally:
            outputs = stop(workers)

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    sent_to = Counter(sms["to"] for sms in vonage.accepted)
    assert set(sent_to) == recipients and set(sent_to.values()) == {1}
    with app.app_context():
        rows = db.session.execute(select(Message.status, Message.attempts)).all()
    assert {tuple(row) for row in rows} == {(MessageStatus.SENT, 1)}  # a "slow down" is no attempt
    # Both workers together kept to the provider's pace: it rarely had to say "slow down" (a message
    # can cross a second's edge on a loaded machine's jitter; two workers each pacing alone would send
    # at twice the limit, and half the messages would hear it), and the whole send took about 300 / 5 s.
    took = vonage.taken_at[-1] - vonage.taken_at[0]
    print(f"{PACED} messages at {RATE}/s: {took:.1f} s, {vonage.throttled} throttled answers")
    assert vonage.throttled <= PACED // 10
    assert (PACED - RATE) / RATE <= took <= PACED / RATE * 1.2


def test_a_stopped_worker_finishes_the_sends_under_way_and_hands_the_others_back_at_once(
        app, database_url, admin_id, group):
    with FakeVonage("key", "secret") as vonage:
        vonage.latency = 3.0  # each send is at the provider for 3 s
        recipients = queue_sms(app, admin_id, group, vonage.base_url, count=20)
        [worker] = start_workers(database_url, count=1, threads=2)
        wait_until(lambda: len(vonage.requests) == 2, timeout=60, workers=[worker])
        stopped_at = time.monotonic()
        [output] = stop([worker])
        took = time.monotonic() - stopped_at
        assert worker.returncode == 0, output

        with app.app_context():
            rows = db.session.execute(select(Message.status, Message.attempts, Message.lease_until)).all()
        # The two sends under way finished and were recorded; the others are free for any worker now,
        # not in two minutes when their leases end, and their untried attempt does not count.
        assert took < vonage.latency + 10
        assert Counter(tuple(row) for row in rows) == {(MessageStatus.SENT, 1, None): 2,
                                                       (MessageStatus.QUEUED, 0, None): 18}
        vonage.latency = 0.0
        again = subprocess.run([sys.executable, "-m", "flask", "worker", "--once"], cwd=ROOT,
                               env=worker_env(database_url), capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr

    sent_to = Counter(sms["to"] for sms in vonage.accepted)
    assert set(sent_to) == recipients and set(sent_to.values()) == {1}
    assert count_sent(app) == 20
