"""Staff sign-in and sessions, probed as an attacker would: one code posted from several half-done
sign-ins at once, a stolen session swapping the authenticator, sessions that never end, cached
staff pages, and a flood of concurrent wrong passwords (ISSUE-13 §4, and §7's throttled sign-ins)."""

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from app import create_app
from extensions import db, vault
from models import AuditEvent, Role, StaffSession, StaffUser, utcnow
from services import staff
from tests.support import PASSWORD, Client, make_config
from tests.webtools import flashes, is_sign_in_redirect, page_text, sign_in

KEY = re.compile(r'<p class="mono totp-key"[^>]*>([A-Z2-7 ]+)</p>')
WRONG = "not the password at all"


# -- helpers --------------------------------------------------------------------------------------

def give_authenticator(app, user_id: int) -> str:
    """Store an authenticator secret for a user, as if set up earlier; return the secret."""
    secret = pyotp.random_base32()
    with app.app_context():
        user = db.session.get(StaffUser, user_id)
        user.totp_secret_encrypted, user.totp_last_step = vault.encrypt(secret), None
        db.session.commit()
    return secret


def stored_secret(app, user_id: int) -> str | None:
    with app.app_context():
        user = db.session.get(StaffUser, user_id)
        return vault.decrypt(user.totp_secret_encrypted) if user.totp_secret_encrypted else None


def code_for(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def password_step(app, username: str) -> Client:
    """A client that passed the password and waits at the second step; its CSRF token read."""
    browser = Client(app)
    response = browser.login(username)
    assert response.headers["Location"] == "/auth/two-factor"
    browser.token()
    return browser


def new_key(browser: Client) -> str:
    """Open the set-up page and read the new authenticator's key, as the person would type it."""
    return KEY.search(page_text(browser.get("/auth/two-factor/setup"))).group(1).replace(" ", "")


def actions(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        db.session.expunge_all()
        return rows


def move_session(app, **values) -> None:
    """Move the clock for the open session(s): edit their timestamps, never sleep."""
    with app.app_context():
        db.session.execute(update(StaffSession).values(**values))
        db.session.commit()


def all_at_once(work, items):
    """Run work(item) for every item in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(items))

    def run(item):
        barrier.wait()
        return work(item)

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(run, items))


@pytest.fixture
def secure_app(app, database_url):
    """The app as deployed behind TLS: Secure cookies (the suite's default app turns them off)."""
    other = create_app({**make_config(database_url), "SESSION_COOKIE_SECURE": True})
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


# -- 1. a code works once, atomically -------------------------------------------------------------

def test_one_code_posted_at_once_from_three_pending_sign_ins_signs_in_exactly_one(app, admin_id, monkeypatch):
    app.config["LOGIN_MAX_FAILURES"] = 50  # the code, not the throttle, is what must refuse here
    matching_step = staff._matching_step

    def slow_matching_step(secret, code):  # a loaded server: the three requests overlap for sure
        time.sleep(0.05)
        return matching_step(secret, code)

    monkeypatch.setattr(staff, "_matching_step", slow_matching_step)
    secret = give_authenticator(app, admin_id)
    browsers = [password_step(app, "alice") for _ in range(3)]
    code = code_for(secret)

    responses = all_at_once(lambda browser: browser.post("/auth/two-factor", {"code": code}), browsers)

    assert sorted(response.status_code for response in responses) == [200, 200, 302]
    assert [browser.get("/").status_code for browser in browsers].count(200) == 1
    refused = [page_text(response) for response in responses if response.status_code == 200]
    assert all("Wrong or already used code" in page for page in refused)


# -- 2. the authenticator of a signed-in user -----------------------------------------------------

@pytest.fixture
def with_app(app, admin_id):
    """alice, signed in with her authenticator; returns (client, old secret)."""
    browser = sign_in(app, "alice")  # the suite's roles need no code, so her password alone
    return browser, give_authenticator(app, admin_id)


def test_a_session_alone_cannot_replace_the_authenticator_without_the_password(app, admin_id, with_app):
    browser, old = with_app
    new = new_key(browser)

    response = browser.post("/auth/two-factor/setup", {"code": code_for(new), "old_code": code_for(old)})

    assert response.status_code == 200
    assert stored_secret(app, admin_id) == old


def test_replacing_the_authenticator_needs_a_code_from_the_old_one(app, admin_id, with_app):
    browser, old = with_app
    new = new_key(browser)

    response = browser.post("/auth/two-factor/setup", {"code": code_for(new), "password": PASSWORD})

    assert response.status_code == 200
    assert "Wrong or already used code" in page_text(response)
    assert stored_secret(app, admin_id) == old


def test_turning_on_an_authenticator_needs_the_current_password(app, csr_id):
    browser = sign_in(app, "carl")
    new = new_key(browser)

    response = browser.post("/auth/two-factor/setup", {"code": code_for(new), "password": WRONG})

    assert response.status_code == 200
    assert "The current password is wrong." in page_text(response)
    assert stored_secret(app, csr_id) is None


def test_replacing_the_authenticator_is_audited_and_ends_the_other_sessions(app, admin_id, with_app):
    browser, old = with_app
    elsewhere = sign_in(app, "alice")
    new = new_key(browser)

    response = browser.post("/auth/two-factor/setup",
                            {"code": code_for(new), "old_code": code_for(old), "password": PASSWORD})

    assert response.status_code == 302
    assert stored_secret(app, admin_id) == new
    assert browser.get("/").status_code == 200
    assert is_sign_in_redirect(elsewhere.get("/"))
    [event] = actions(app, "auth.totp_replaced")
    assert event.actor == "alice" and event.outcome == "ok"


# -- 3. idle and absolute limits, on the server ---------------------------------------------------

def test_a_session_idle_longer_than_the_limit_is_refused_and_revoked(app, admin):
    now = utcnow()
    move_session(app, created_at=now - timedelta(hours=1), last_seen_at=now - timedelta(minutes=31))

    assert is_sign_in_redirect(admin.get("/"))
    with app.app_context():
        assert db.session.scalar(select(StaffSession.revoked_at)) is not None


def test_a_session_older_than_the_absolute_limit_is_refused_though_it_was_just_used(app, admin):
    assert admin.get("/").status_code == 200  # the cookie was just written again
    move_session(app, created_at=utcnow() - timedelta(hours=12, minutes=1))

    assert is_sign_in_redirect(admin.get("/"))


def test_the_idle_and_absolute_limits_are_configurable(app, admin_id):
    app.config.update(SESSION_IDLE_MINUTES=5, SESSION_MAX_HOURS=1)
    idle, old = sign_in(app, "alice"), sign_in(app, "alice")
    now = utcnow()
    with app.app_context():
        first, second = db.session.scalars(select(StaffSession.id).order_by(StaffSession.id))
        db.session.execute(update(StaffSession).where(StaffSession.id == first)
                           .values(last_seen_at=now - timedelta(minutes=6)))
        db.session.execute(update(StaffSession).where(StaffSession.id == second)
                           .values(created_at=now - timedelta(minutes=61)))
        db.session.commit()

    assert is_sign_in_redirect(idle.get("/"))
    assert is_sign_in_redirect(old.get("/"))


def test_a_session_in_use_stays_open_and_is_marked_seen_at_most_once_a_minute(app, admin):
    move_session(app, last_seen_at=utcnow() - timedelta(minutes=29))

    assert admin.get("/").status_code == 200
    with app.app_context():
        seen = db.session.scalar(select(StaffSession.last_seen_at))
    assert utcnow() - seen < timedelta(minutes=1)  # moved forward: idle counts from now

    assert admin.get("/accounts").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(StaffSession.last_seen_at)) == seen  # no write per request


def test_an_account_pages_status_poll_does_not_keep_an_unattended_session_open(app, admin, make_account):
    account_id = make_account()
    poll = {"X-Provisio-Poll": "1"}  # what static/js/app.js sends every 10 s
    move_session(app, last_seen_at=utcnow() - timedelta(minutes=25))
    assert admin.get(f"/accounts/{account_id}/status", headers=poll).status_code == 200

    app.config["SESSION_IDLE_MINUTES"] = 24  # the last person's request was 25 minutes ago, polls since

    assert is_sign_in_redirect(admin.get(f"/accounts/{account_id}/status", headers=poll))


def test_a_status_poll_leaves_the_sessions_last_activity_as_it_was(app, admin, make_account):
    account_id = make_account()
    before = utcnow() - timedelta(minutes=20)
    move_session(app, last_seen_at=before)

    admin.get(f"/accounts/{account_id}/status", headers={"X-Provisio-Poll": "1"})

    with app.app_context():
        assert db.session.scalar(select(StaffSession.last_seen_at)) == before


def test_sessions_past_the_absolute_limit_are_deleted_at_the_next_sign_in(app, admin_id, csr_id):
    sign_in(app, "carl")
    move_session(app, created_at=utcnow() - timedelta(hours=13))

    sign_in(app, "alice")

    with app.app_context():
        owners = list(db.session.scalars(select(StaffSession.user_id)))
    assert owners == [admin_id]


# -- 4. cookie and caching ------------------------------------------------------------------------

def test_a_secure_session_cookie_is_named_host_and_is_host_only(secure_app, admin_id):
    browser = secure_app.test_client()
    response = browser.get("/auth/login", base_url="https://provisio.example")

    [cookie] = response.headers.getlist("Set-Cookie")
    assert cookie.startswith("__Host-session=")
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in attributes and "path=/" in attributes
    assert not any(part.startswith("domain=") for part in attributes)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page_text(response)).group(1)
    signed_in = browser.post("/auth/login", base_url="https://provisio.example",
                             headers={"Referer": "https://provisio.example/auth/login"},  # CSRF over TLS
                             data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 302
    assert browser.get("/", base_url="https://provisio.example").status_code == 200  # the session rides on it


def test_signed_in_pages_are_never_stored(admin):
    for url in ("/", "/accounts", "/auth/password", "/admin/audit"):
        response = admin.get(url)
        assert response.status_code == 200, url
        assert response.headers.get("Cache-Control") == "no-store", url


def test_the_csv_export_is_never_stored(csr):
    response = csr.post("/accounts/export", {"q": ""})

    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers.get("Cache-Control") == "no-store"


# -- 5. two-factor for every role by default ------------------------------------------------------

@pytest.mark.parametrize("role", [Role.ADMIN, Role.CSR, Role.VIEWER])
def test_every_staff_role_must_set_up_two_factor_by_default(app, database_url, role):
    defaults = {key: value for key, value in make_config(database_url).items()
                if key != "TOTP_REQUIRED_ROLES"}
    deployed = create_app(defaults)
    try:
        with deployed.app_context():
            staff.create(username="sam", password=PASSWORD, role=role, actor="test")
        response = Client(deployed).login("sam")
        assert response.headers["Location"] == "/auth/two-factor"
    finally:
        with deployed.app_context():
            db.session.remove()
            db.engine.dispose()


# -- 6. the sign-in throttle, exact under concurrency ---------------------------------------------

@pytest.fixture
def argon2_checks(monkeypatch):
    """Count every argon2 verification the app runs; each takes a real hash's time again."""
    calls = []
    lock = threading.Lock()
    original = PasswordHasher.verify

    def counted(self, hash_, password):
        with lock:
            calls.append(1)
        time.sleep(0.05)  # the suite's CHEAPEST profile is instant; deployed argon2id is not
        return original(self, hash_, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    return calls


@pytest.mark.parametrize("username", ["alice", "nobody"])
def test_twenty_concurrent_wrong_passwords_run_at_most_the_limit_of_argon2_checks(
    app, admin_id, argon2_checks, username
):
    browsers = [Client(app) for _ in range(20)]
    for browser in browsers:
        browser.token()

    responses = all_at_once(
        lambda browser: browser.post("/auth/login", {"username": username, "password": WRONG}), browsers
    )

    limit = app.config["LOGIN_MAX_FAILURES"]
    assert len(argon2_checks) == limit
    messages = [flashes(response)[0][1] for response in responses]
    assert messages.count(staff.INVALID_LOGIN) == limit
    assert sum(message.startswith("Too many failed sign-ins") for message in messages) == 20 - limit


def test_crossing_the_limit_writes_one_throttled_audit_row_not_one_per_attempt(app, admin_id):
    browser = Client(app)
    for _ in range(app.config["LOGIN_MAX_FAILURES"] + 4):
        browser.login("alice", WRONG)

    [event] = actions(app, "auth.login_throttled")
    assert event.actor == "alice" and event.outcome == "throttled"


def test_the_throttled_answer_is_the_same_for_unknown_and_known_users(app, admin_id):
    answers = {}
    for username in ("alice", "nobody"):
        browser = Client(app)
        for _ in range(app.config["LOGIN_MAX_FAILURES"]):
            browser.login(username, WRONG)
        answers[username] = flashes(browser.login(username, WRONG))

    assert answers["alice"] == answers["nobody"]
    assert answers["alice"][0][1].startswith("Too many failed sign-ins")


def test_a_completed_sign_in_resets_the_count(app, admin_id):
    browser = Client(app)
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        browser.login("alice", WRONG)
    assert sign_in(app, "alice")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        browser.login("alice", WRONG)

    assert browser.login("alice").status_code == 302


def test_wrong_codes_count_on_the_same_key_as_wrong_passwords(app, admin_id):
    secret = give_authenticator(app, admin_id)
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 2):
        Client(app).login("alice", WRONG)
    browser = password_step(app, "alice")  # the last attempt the limit allows but one
    wrong = "000000" if code_for(secret) != "000000" else "111111"
    browser.post("/auth/two-factor", {"code": wrong})

    response = browser.post("/auth/two-factor", {"code": code_for(secret)})

    assert "Too many failed sign-ins" in page_text(response)
    assert is_sign_in_redirect(browser.get("/"))


def test_changing_ones_password_does_not_use_up_ones_sign_in_attempts(app, csr_id):
    app.config["LOGIN_MAX_FAILURES"] = 3
    browser, password = Client(app), PASSWORD
    browser.login("carl")
    for n in range(4):  # more changes than the limit of attempts, each with the right password
        new = f"a new long passphrase number {n}"
        response = browser.post("/auth/password", {"current": password, "password": new, "repeat": new})
        assert response.status_code == 302, n
        password = new

    assert Client(app).login("carl", password).headers["Location"].endswith("/")
