"""TOTP second factor (SPEC §7): required for admins, optional for others unless their role is listed;
set up with a QR code at the first sign-in, a code works once, wrong codes count towards the lock."""

import html
import re
import time

import pyotp
import pytest
from sqlalchemy import select

from extensions import db, vault
from models import AuditEvent, StaffUser
from tests.support import PASSWORD, Client
from tests.webtools import flashes, page_text

KEY = re.compile(r'<p class="mono totp-key"[^>]*>([A-Z2-7 ]+)</p>')


@pytest.fixture
def app(app):
    app.config["TOTP_REQUIRED_ROLES"] = ["admin"]  # an operator who lowered the default (every role)
    return app


def password_step(app, username: str) -> Client:
    browser = Client(app)
    response = browser.login(username)
    assert response.status_code == 302 and response.headers["Location"] == "/auth/two-factor"
    return browser


def code_for(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def stored_secret(app, username: str) -> str | None:
    with app.app_context():
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == username))
        return vault.decrypt(user.totp_secret_encrypted) if user.totp_secret_encrypted else None


def set_up(app, username: str) -> tuple[Client, str]:
    """Sign in for the first time: password, then the set-up page's key and a code from it."""
    browser = password_step(app, username)
    page = page_text(browser.get("/auth/two-factor"))
    assert "Set up two-factor sign-in" in page and "<svg" in page
    secret = KEY.search(page).group(1).replace(" ", "")
    response = browser.post("/auth/two-factor", {"code": code_for(secret)})
    assert response.status_code == 302, page_text(response)
    return browser, secret


def test_an_admin_sets_up_an_authenticator_at_the_first_sign_in_and_is_then_signed_in(app, admin_id):
    browser = password_step(app, "alice")
    assert browser.get("/").status_code == 302  # the password alone opens nothing

    browser, secret = set_up(app, "alice")

    assert browser.get("/").status_code == 200
    assert stored_secret(app, "alice") == secret  # kept encrypted, and only once confirmed
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action)))
    assert "auth.totp_enabled" in actions and "auth.login" in actions


def test_reloading_the_set_up_page_keeps_the_same_key_and_writes_nothing(app, admin_id):
    browser = password_step(app, "alice")
    first = KEY.search(page_text(browser.get("/auth/two-factor"))).group(1)
    again = KEY.search(page_text(browser.get("/auth/two-factor"))).group(1)

    assert first == again
    assert stored_secret(app, "alice") is None
    assert first.replace(" ", "") not in browser.http.get_cookie("session").value  # sealed in the cookie


def test_next_sign_in_asks_for_a_code_and_refuses_a_wrong_or_replayed_one(app, admin_id):
    _, secret = set_up(app, "alice")

    browser = password_step(app, "alice")
    page = page_text(browser.get("/auth/two-factor"))
    assert "Type the code your authenticator app shows" in page and "<svg" not in page
    wrong = browser.post("/auth/two-factor", {"code": "000000" if code_for(secret) != "000000" else "111111"})
    assert "Wrong or already used code" in html.unescape(page_text(wrong))
    assert browser.get("/").status_code == 302

    with app.app_context():  # the code the set-up used (read back, so a step boundary cannot move it)
        step = db.session.scalar(select(StaffUser.totp_last_step).where(StaffUser.username == "alice"))
    used = pyotp.TOTP(secret).at(step * 30)
    replay = browser.post("/auth/two-factor", {"code": used})
    assert "Wrong or already used code" in html.unescape(page_text(replay))

    next_code = pyotp.TOTP(secret).at((step + 1) * 30)
    later = browser.post("/auth/two-factor", {"code": next_code})
    assert later.status_code == 302 and browser.get("/").status_code == 200


def test_wrong_codes_count_towards_the_sign_in_lock(app, admin_id):
    set_up(app, "alice")
    browser = password_step(app, "alice")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        browser.post("/auth/two-factor", {"code": "12345"})

    locked = Client(app).login("alice")
    assert any("Too many failed sign-ins" in message for _, message in flashes(locked))


def test_a_pending_sign_in_expires(app, admin_id, monkeypatch):
    browser = password_step(app, "alice")
    later = time.time() + 301
    monkeypatch.setattr("blueprints.auth.views.time.time", lambda: later)

    response = browser.get("/auth/two-factor", follow_redirects=True)

    assert any("Sign in again" in message for _, message in flashes(response))


def test_a_csr_signs_in_with_the_password_alone_until_they_set_up_an_app(app, csr_id):
    browser = Client(app)
    assert browser.login("carl").headers["Location"] == "/"

    page = page_text(browser.get("/auth/two-factor/setup"))
    secret = KEY.search(page).group(1).replace(" ", "")
    done = browser.post("/auth/two-factor/setup", {"code": code_for(secret), "password": PASSWORD},
                        follow_redirects=True)
    assert ("success",
            "Two-factor sign-in is on: from now on you sign in with a code as well.") in flashes(done)

    assert Client(app).login("carl").headers["Location"] == "/auth/two-factor"


def test_listed_roles_must_set_up_an_app_too(app, csr_id):
    app.config["TOTP_REQUIRED_ROLES"] = ["admin", "csr"]
    password_step(app, "carl")


def test_the_cli_resets_a_lost_authenticator_and_signs_the_user_out(app, admin_id):
    browser, _ = set_up(app, "alice")

    result = app.test_cli_runner().invoke(args=["reset-totp", "alice"])

    assert result.exit_code == 0 and "reset" in result.output
    assert stored_secret(app, "alice") is None
    assert browser.get("/").status_code == 302  # signed out
    page = page_text(password_step(app, "alice").get("/auth/two-factor"))
    assert "Set up two-factor sign-in" in page
    assert app.test_cli_runner().invoke(args=["reset-totp", "nobody"]).exit_code == 1


def test_an_admin_resets_a_staff_users_lost_authenticator_in_the_console(app, admin_id, csr_id):
    carl = Client(app)
    carl.login("carl")
    secret = KEY.search(page_text(carl.get("/auth/two-factor/setup"))).group(1).replace(" ", "")
    carl.post("/auth/two-factor/setup", {"code": code_for(secret), "password": PASSWORD})
    admin, _ = set_up(app, "alice")
    assert "Reset two-factor sign-in" in page_text(admin.get(f"/admin/staff/{csr_id}/edit"))

    done = admin.post(f"/admin/staff/{csr_id}/reset-totp", follow_redirects=True)

    assert any("Two-factor sign-in of carl reset" in message for _, message in flashes(done))
    assert stored_secret(app, "carl") is None
    assert carl.get("/").status_code == 302  # their sessions ended
    assert carl.login("carl").headers["Location"] == "/"  # a CSR: password alone again
    assert carl.post(f"/admin/staff/{admin_id}/reset-totp").status_code == 403  # only admins reset
    assert stored_secret(app, "alice") is not None
