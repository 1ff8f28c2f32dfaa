"""What the tests share besides fixtures: the suite's configuration, a browser-like client, staff users,
and links signed in the past. Imported as `tests.support` everywhere; tests/conftest.py keeps the fixtures."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from itsdangerous import TimestampSigner

from models import Role
from services import staff

PASSWORD = "correct horse battery staple"
PUBLIC_BASE_URL = "https://activate.example.test"
KEY = Fernet.generate_key().decode()


def make_config(url: str) -> dict:
    return {
        "TESTING": True,
        "PROVISIO_ENV": "testing",
        "SECRET_KEY": "test-secret-key",
        "ENCRYPTION_KEYS": [KEY],
        "SQLALCHEMY_DATABASE_URI": url,
        "SESSION_COOKIE_SECURE": False,
        "LOGIN_MAX_FAILURES": 5,
        "PASSWORD_HASH_PROFILE": "CHEAPEST",  # still argon2id, just fast
        "TOTP_REQUIRED_ROLES": [],  # tests/test_totp.py turns the admins' second factor on
    }


class Client:
    """A browser-like test client that signs in and sends the CSRF token like a real form."""

    def __init__(self, app):
        self.http = app.test_client()
        self.csrf = ""

    def get(self, url, **kwargs):
        return self.http.get(url, **kwargs)

    def post(self, url, data=None, *, csrf=True, **kwargs):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token())
        return self.http.post(url, data=data, **kwargs)

    def token(self) -> str:
        if not self.csrf:
            page = self.http.get("/auth/login", follow_redirects=True).get_data(as_text=True)
            self.csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        return self.csrf

    def login(self, username: str, password: str = PASSWORD):
        self.csrf = ""
        response = self.post("/auth/login", {"username": username, "password": password})
        self.csrf = ""  # a new session gets a new token
        return response


def configure_sms(app, default: str, **providers) -> None:
    """Save the SMS settings as an admin would: each provider's values and the default gateway."""
    from services import settings

    with app.app_context():
        settings.save_typed({"public_base_url": PUBLIC_BASE_URL, "sms": {"gateway": default, **providers}},
                            actor="test")


def queue_sms_links(app, account_ids: list[int], username: str = "alice") -> list[int]:
    """Queue the secure link by SMS for each account, as a CSR's Send does (the `admin_id` fixture's
    user by default)."""
    from sqlalchemy import select

    from extensions import db
    from models import Account, Channel, MessageKind, StaffUser
    from services import messaging

    with app.app_context():
        actor = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
        return [messaging.queue(db.session.get(Account, account_id), MessageKind.LINK, Channel.SMS,
                                actor=actor).id for account_id in account_ids]


def make_staff(app, username: str, role: Role, group_ids=()) -> int:
    """Create a staff user with PASSWORD through the service; return its id."""
    with app.app_context():
        user = staff.create(username=username, password=PASSWORD, role=role,
                            group_ids=list(group_ids), actor="test")
        return user.id


@contextmanager
def signed_in_the_past(*, hours: float) -> Iterator[None]:
    """Date every itsdangerous signature made in the block `hours` back: an old link without waiting.

    Sign links only in it (links.token_of, the worker): a signature checked inside it would be
    checked against the same past clock.
    """
    signed_at = int(time.time() - hours * 3600)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda _signer: signed_at)
        yield
