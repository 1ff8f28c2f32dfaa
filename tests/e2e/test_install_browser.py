"""The end user's taps in a real Chromium: Install reaches the store, which lives on another origin; after
Activate the page says what happens next; an iPad posing as a Mac is offered the Mac, not itself."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Account, Status, StatusEvent
from services import settings
from tests.webtools import issue_link

pytestmark = pytest.mark.e2e


class Store(BaseHTTPRequestHandler):
    """A stand-in app store: any path answers a small page, and each visit is noted."""

    visits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.visits.append(self.path)
        body = b"<!doctype html><title>Store</title><h1>App store</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def store():
    """The store on its own loopback port: another origin than the app's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Store)
    Store.visits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.parametrize("device", ["iPhone 13", "Pixel 7"])
def test_a_tap_on_install_lands_in_the_store_and_counts_once(app, live_server, playwright, browser, store,
                                                            make_account, device):
    account_id = make_account(wizard=True)
    with app.app_context():
        settings.save({"download_urls": {"ios/*": f"{store}/ios-app", "android/*": f"{store}/android-app"}},
                      actor="test")
    token = issue_link(app, account_id)
    context = browser.new_context(**playwright.devices[device])
    page = context.new_page()
    blocked = []
    page.on("console", lambda message: message.type == "error" and blocked.append(message.text))
    try:
        page.goto(f"{live_server}/m/{token}")
        page.click("form[action$='/install'] button[type=submit]")
        page.wait_for_url(f"{store}/**", timeout=10_000)
        assert page.locator("h1").inner_text() == "App store"
        page.go_back()  # the person comes back to the page and taps Install again
        page.click("form[action$='/install'] button[type=submit]")
        page.wait_for_url(f"{store}/**", timeout=10_000)
    finally:
        context.close()

    expected = "/ios-app" if device == "iPhone 13" else "/android-app"
    assert [path for path in Store.visits if path != "/favicon.ico"] == [expected, expected]
    assert blocked == []
    with app.app_context():
        assert db.session.get(Account, account_id).status is Status.INSTALLED
        installed = db.session.scalar(select(func.count()).select_from(StatusEvent).where(
            StatusEvent.account_id == account_id, StatusEvent.status == Status.INSTALLED))
        assert installed == 1


def test_after_activate_the_page_says_what_happens_next(app, live_server, playwright, browser, make_account):
    token = issue_link(app, make_account(wizard=True))
    context = browser.new_context(**playwright.devices["iPhone 13"], accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/m/{token}")
        assert page.locator("[data-after-activate]").is_hidden()
        with page.expect_download():
            page.click("form[action$='/activate'] button[type=submit]")
        next_steps = page.locator("[data-after-activate]")
        next_steps.wait_for(state="visible")
        assert "opens with your account set up" in next_steps.inner_text()
        page.screenshot(path="/tmp/phone-after-activate.png", full_page=True)
    finally:
        context.close()


def test_an_ipad_posing_as_a_mac_is_offered_the_mac_among_the_other_devices(app, live_server, browser,
                                                                            make_account):
    token = issue_link(app, make_account(wizard=True))
    mac_safari = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                  "Version/17.0 Safari/605.1.15")
    context = browser.new_context(user_agent=mac_safari, has_touch=True,
                                  viewport={"width": 820, "height": 1180})
    page = context.new_page()
    try:
        page.goto(f"{live_server}/m/{token}")
        assert page.locator("[data-platform-label] strong").inner_text() == "iPad"
        page.click("summary")
        offered = page.locator("[data-platform-choice]:visible button").all_inner_texts()
        assert any(label.startswith("Mac") for label in offered)
        assert not any(label.startswith("iPad") for label in offered)
        # Activate asks nothing more: the iPad is where the app lives.
        assert page.locator("input[name=confirm]").is_hidden()
        page.screenshot(path="/tmp/ipad-as-mac.png", full_page=True)
    finally:
        context.close()
