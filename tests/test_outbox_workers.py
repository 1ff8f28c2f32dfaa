"""Two worker processes at once over 1,000 queued SMS: each message reaches the provider exactly once.

Runs on whichever database the suite runs on (SQLite, and PostgreSQL in CI), with real `flask worker`
processes and a local server speaking Vonage's API.
"""

import os
import re
import secrets
import subprocess
import sys
from collections import Counter

from sqlalchemy import select

from extensions import db, vault
from models import Account, Channel, Message, MessageKind, MessageStatus
from services import messaging, settings, staff
from tests.support import KEY
from tools.fake_providers import FakeVonage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESSAGES = 1000


def queue_sms(app, admin_id: int, group_id: int, base_url: str) -> set[str]:
    """Point SMS at the fake Vonage, make MESSAGES accounts and queue one link SMS to each."""
    with app.app_context():
        settings.save({"public_base_url": "https://activate.example.test",
                       "sms": {"gateway": "vonage", "vonage": {
                           "api_key": "key", "api_secret_encrypted": vault.encrypt("secret"),
                           "sender": "Provisio", "base_url": base_url}}}, actor="test")
        password = vault.encrypt("Sip-Password-1234567")
        rows = [Account(username=f"8{i:07d}", callerid=f"+4178{i:07d}", password_encrypted=password,
                        group_id=group_id, wizard=True, enabled=False, security_model="end-to-end")
                for i in range(MESSAGES)]
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
