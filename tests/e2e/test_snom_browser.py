"""A CSR gives a desk phone a new settings URL in a real Chromium, copies it, and the phone fetches it."""

import re

import pytest
import requests

from extensions import db
from models import Account
from services import settings, snom
from tests.e2e.test_console_browser import sign_in

pytestmark = pytest.mark.e2e

MAC = "000413AE765E"
PHONE_UA = f"Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 1.1.5-IS {MAC})"


def test_csr_rotates_the_settings_url_copies_it_and_the_phone_fetches_it(app, live_server, browser, csr_id,
                                                                         make_account):
    account_id = make_account(account_type="snom", mac_address=MAC, security_model=None, owner="Front desk")
    with app.app_context():
        settings.save({"public_base_url": live_server}, actor="test")
        old = snom.rotate_secret(db.session.get(Account, account_id), actor="test")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, live_server, "carl")
        page.goto(f"{live_server}/accounts/{account_id}")
        assert "Set " in page.inner_text("[data-snom-url]")
        page.screenshot(path="/tmp/snom-account.png", full_page=True)
        # Accept "The phone's current settings URL stops working".
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("main button:has-text('Rotate settings URL')")
        page.wait_for_selector("#snom-url")
        page.click("button[data-copy]")
        page.wait_for_selector("[data-copy-status]:has-text('Copied.')")
        copied = page.evaluate("navigator.clipboard.readText()")
        page.screenshot(path="/tmp/snom-settings-url.png", full_page=True)
        assert errors == []  # the copy script runs under the CSP (script-src 'self')
    finally:
        context.close()

    assert re.fullmatch(rf"{re.escape(live_server)}/snom/[A-Za-z0-9_-]{{32}}/\{{mac\}}\.xml", copied)
    assert old not in copied
    # The phone substitutes {mac} and fetches the URL.
    response = requests.get(copied.replace("{mac}", MAC), headers={"User-Agent": PHONE_UA}, timeout=30)
    assert response.status_code == 200
    assert b"<user_realname" in response.content and b"Front desk" in response.content
    old_url = f"{live_server}/snom/{old}/{MAC}.xml"
    assert requests.get(old_url, headers={"User-Agent": PHONE_UA}, timeout=30).status_code == 404
