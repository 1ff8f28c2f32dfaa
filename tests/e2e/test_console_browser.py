"""A CSR's day in a real Chromium: sign in, create accounts with the wizard, act on them."""

import pytest

from extensions import db
from models import Account
from tests.support import PASSWORD

pytestmark = pytest.mark.e2e


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/auth/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_csr_creates_wizard_account_and_sees_it_waiting_for_activation(app, live_server, page, csr_id):
    sign_in(page, live_server, "carl")
    page.click("text=New account (wizard)")
    username = page.input_value("#username")
    assert username.isdigit() and len(username) == app.config["USERNAME_LENGTH"]
    page.fill("#callerid", "+41 79 555 12 34")
    page.select_option("#group_id", label="Group A (profile: Standard)")
    page.fill("#owner", "Anna Meier")
    page.click("text=Create account")

    page.wait_for_selector("text=Status timeline")
    body = page.inner_text("main")
    assert f"Account {username} created." in body
    assert "+41795551234" in body
    assert "waiting for activation" in body.lower()
    assert page.errors == []
    with app.app_context():
        account = db.session.scalar(db.select(Account).where(Account.username == username))
        assert account is not None and account.enabled is False and account.wizard is True


def test_choosing_snom_shows_access_rules_and_hides_pgsm_fields(live_server, page, admin_id, group):
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/accounts/new")
    assert page.is_visible("#security_model")
    assert not page.is_visible("#deny")
    page.check("input[name=account_type][value=snom]")
    assert page.is_visible("#deny") and page.is_visible("#mac_address")
    assert not page.is_visible("#security_model")
    assert page.errors == []


def test_keepalive_warning_appears_when_keepalive_is_ticked(live_server, page, admin_id, group):
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/accounts/wizard")
    warning = page.locator("[data-keepalive-warning]")
    assert not warning.is_visible()
    page.check("#keepalive")
    assert warning.is_visible()
    assert "older than 11.1" in warning.inner_text()


def test_disable_button_disables_the_account_after_the_page_round_trip(
    app, live_server, page, admin_id, make_account
):
    account_id = make_account()
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/accounts/{account_id}")
    page.click("main button:has-text('Disable')")
    page.wait_for_selector("text=user0001 disabled.")
    assert page.is_visible("main button:has-text('Enable')")
    with app.app_context():
        assert db.session.get(Account, account_id).enabled is False


def test_replacing_the_authenticator_asks_for_the_password_and_the_old_apps_code(app, live_server, page,
                                                                                 admin_id):
    import pyotp

    from extensions import vault
    from models import StaffUser

    old = pyotp.random_base32()
    sign_in(page, live_server, "alice")  # the suite's roles sign in with the password alone
    with app.app_context():
        db.session.get(StaffUser, admin_id).totp_secret_encrypted = vault.encrypt(old)
        db.session.commit()
    page.goto(f"{live_server}/auth/two-factor/setup")
    new = page.inner_text(".totp-key").replace(" ", "")
    page.fill("#code", pyotp.TOTP(new).now())
    page.fill("#old_code", pyotp.TOTP(old).now())
    page.fill("#password", PASSWORD)
    page.screenshot(path="/tmp/staff-totp-replace.png", full_page=True)
    page.click("main form button[type=submit]")

    page.wait_for_url(f"{live_server}/")
    assert "Your other sessions were signed out." in page.inner_text("main")
    assert page.errors == []
    with app.app_context():
        assert vault.decrypt(db.session.get(StaffUser, admin_id).totp_secret_encrypted) == new


def test_the_account_pages_status_poll_says_it_is_a_poll(live_server, page, admin_id, make_account):
    account_id = make_account()
    page.clock.install()
    sign_in(page, live_server, "alice")
    polls = []
    page.on("request", lambda request: "/status" in request.url and polls.append(request.headers))
    page.goto(f"{live_server}/accounts/{account_id}")

    page.clock.run_for(10_500)  # the page polls every 10 s
    page.wait_for_timeout(300)

    assert polls and polls[0].get("x-provisio-poll") == "1"  # the server does not count it as activity
    assert page.errors == []
