"""Secure links and activation: dead links answer 410 with no account data, links come from
the public base URL, the app fetch, concurrent taps, platform detection, the page's origins
and script, and no secret left anywhere after an activation."""

import logging
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from urllib.parse import parse_qs, quote, urlsplit
from xml.etree import ElementTree

import pytest
import requests
import segno
from sqlalchemy import MetaData, Table, func, inspect, select, update

from extensions import db
from models import Account, AuditEvent, Device, Message, Platform, Profile, Status
from services import accounts, links, settings, staff
from services.platforms import platform_of
from tests.support import signed_in_the_past
from tests.webtools import detached, flashes, issue_link, page_text, run_worker

PUBLIC = "https://activate.example.test"
LINK = re.compile(r"https://activate\.example\.test/m/([A-Za-z0-9_.\-]+)")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DETECTED = re.compile(r'name="platform" value="([a-z]+)" data-platform-input')
APP = {"X-Provisio-Client": "12.3.1"}

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.0.0 Mobile Safari/537.36")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/12.1 Mobile/15E148 Safari/604.1")
WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.0.0 Safari/537.36")
LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/120.0.0.0 Safari/537.36")
MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
       "Version/17.0 Safari/605.1.15")


# -- helpers -------------------------------------------------------------------------------

def fresh_token(app, account_id: int, hint: str = "link") -> str:
    """A valid link: the account's newest, queued as a CSR's Send does and signed as the worker does."""
    return issue_link(app, account_id, hint)


def send_link(browser, account_id: int, **headers):
    """The CSR presses Send (secure link, by e-mail) on the account page."""
    return browser.post(f"/accounts/{account_id}/send",
                        {"kind": "link", "channel": "email", "idempotency_key": uuid.uuid4().hex},
                        headers=headers)


def open_page(phone, token: str, user_agent: str = IPHONE, **headers) -> str:
    response = phone.get(f"/m/{token}", headers={"User-Agent": user_agent, **headers})
    assert response.status_code == 200
    return page_text(response)


def account_row(app, account_id: int) -> Account | None:
    return detached(app, Account, account_id)


def device_count(app, account_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Device.id)).where(Device.account_id == account_id))


class Attributes(HTMLParser):
    """Collect every URL-bearing attribute and every <script> of a page."""

    URL_ATTRIBUTES = {"src", "href", "action", "formaction", "xlink:href", "poster", "srcset", "data"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self._in_script = False
        self.inline_code = ""

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in self.URL_ATTRIBUTES and value is not None:
                self.urls.append((tag, name, value))
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_code += data.strip()


def parse(html: str) -> Attributes:
    parser = Attributes()
    parser.feed(html)
    return parser


def qr_cells(html: str) -> set[tuple[int, int]]:
    """Read the dark modules back from the page's inline SVG path (segno draws rows of h-runs)."""
    path = re.search(r'<svg[^>]*>.*?<path[^>]*\sd="([^"]+)"', html, re.S).group(1)
    cells, x, y = set(), 0.0, 0.0
    for command, args in re.findall(r"([MmHhVv])([^MmHhVv]*)", path):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        elif command == "h":
            cells.update((int(x) + i, int(y)) for i in range(int(numbers[0])))
            x += numbers[0]
        else:
            raise AssertionError(f"unexpected SVG path command {command}")
    return _normalised(cells)


def qr_matches(html: str, url: str) -> bool:
    """Whether the page's QR code encodes exactly `url` (at any error-correction level)."""
    shown = qr_cells(html)
    for level in "lmqh":
        code = segno.make(url, error=level, micro=False, boost_error=False)
        expected = {(x, y) for y, row in enumerate(code.matrix) for x, dark in enumerate(row) if dark}
        if _normalised(expected) == shown:
            return True
    return False


def _normalised(cells: set[tuple[int, int]]) -> set[tuple[int, int]]:
    left, top = min(x for x, _ in cells), min(y for _, y in cells)
    return {(x - left, y - top) for x, y in cells}


def assert_no_account_data(body: str, account: Account) -> None:
    assert "ask your operator" in body
    for private in (account.owner, *account.owner.split(), account.username, account.callerid,
                    account.callerid.lstrip("+"), account.email):
        assert private not in body, private


# -- dead links ------------------------------------------------------------------------------

def _tamper(app, csr, account_id, token):
    payload, signature = token.rsplit(".", 1)
    return f"{payload}.{('A' if signature[0] != 'A' else 'B') + signature[1:]}"


def _expire(app, csr, account_id, token):
    with app.app_context():
        message = db.session.scalars(select(Message).where(Message.account_id == account_id)).one()
        with signed_in_the_past(hours=settings.get("link_max_age_hours") + 1):
            return links.token_of(message)  # the same link, signed longer ago than it lives


def _resend(app, csr, account_id, token):
    assert send_link(csr, account_id).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 2  # the resend was queued after the link
    return token


def _rotate(app, csr, account_id, token):
    assert csr.post(f"/accounts/{account_id}/rotate-password").status_code == 302
    return token


def _disable(app, csr, account_id, token):
    assert csr.post(f"/accounts/{account_id}/disable").status_code == 302
    return token


def _delete(app, csr, account_id, token):
    assert csr.post(f"/accounts/{account_id}/delete").status_code == 302
    assert account_row(app, account_id) is None
    return token


def _use(app, csr, account_id, token):
    used = app.test_client().get(f"/m/{token}/activation", headers=APP)
    assert used.status_code == 200
    return token


@pytest.mark.parametrize("kill", [_tamper, _expire, _resend, _rotate, _disable, _delete, _use],
                         ids=["tampered", "expired", "resent", "password-rotated", "disabled",
                              "deleted", "already-used"])
def test_dead_link_answers_410_with_ask_your_operator_and_no_account_data(app, csr, mail_settings,
                                                                          make_account, kill):
    account_id = make_account(owner="Zebedee Quartermain", email="zebedee@example.com")
    account = account_row(app, account_id)
    token = fresh_token(app, account_id)
    phone = app.test_client()
    csrf = CSRF.search(open_page(phone, token)).group(1)  # the user opened the page while it worked

    dead = kill(app, csr, account_id, token)
    devices_before = device_count(app, account_id)

    answers = [
        phone.get(f"/m/{dead}", headers={"User-Agent": IPHONE}),
        phone.post(f"/m/{dead}/install", data={"csrf_token": csrf, "platform": "ios"}),
        phone.post(f"/m/{dead}/activate", data={"csrf_token": csrf, "platform": "ios"}),
        phone.get(f"/m/{dead}/activation", headers=APP),
    ]
    for answer in answers:
        assert answer.status_code == 410
        assert_no_account_data(page_text(answer), account)
        assert answer.mimetype == "text/html"
    assert device_count(app, account_id) == devices_before  # nothing was delivered
    after = account_row(app, account_id)
    assert after is None or after.status is not Status.INSTALLED  # nothing was recorded either


def test_refused_activation_is_audited_without_the_token(app, mail_settings, make_account):
    account_id = make_account()
    token = fresh_token(app, account_id)
    phone = app.test_client()
    assert phone.get(f"/m/{token}/activation", headers=APP).status_code == 200
    assert phone.get(f"/m/{token}/activation", headers=APP).status_code == 410
    with app.app_context():
        refused = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "link.refused")).all()
        assert [(event.detail["reason"], event.outcome, event.target_id) for event in refused] == [
            ("reused", "refused", account_id)]
        assert token not in repr([(e.detail, e.target) for e in refused])


def test_links_come_from_the_public_base_url_not_the_request_host(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    csr.token()
    session = csr.http.get_cookie("session")  # the CSR's console, reached under another Host name
    csr.http.set_cookie(session.key, session.value, domain="evil.example")
    sent = send_link(csr, account_id, Host="evil.example")
    assert sent.status_code == 302 and "/auth/login" not in sent.headers["Location"]
    run_worker(app)

    body = mail_settings.inbox.messages[0].get_content()
    assert "evil.example" not in body
    token = LINK.search(body).group(1)
    link = f"{PUBLIC}/m/{token}"

    html = open_page(app.test_client(), token, WINDOWS, Host="evil.example")
    assert "evil.example" not in html
    assert qr_matches(html, link)
    assert not qr_matches(html, f"http://evil.example/m/{token}")
    app_links = [value for _tag, name, value in parse(html).urls if value.startswith("provisio:")]
    assert app_links == [f"provisio://activate?u={quote(link + '/activation', safe='')}"]


# -- the app's direct fetch ------------------------------------------------------------------

def test_app_fetch_without_client_header_is_400_and_consumes_nothing(app, mail_settings, make_account):
    account_id = make_account(wizard=True)
    token = fresh_token(app, account_id)
    browser = app.test_client()

    refused = browser.get(f"/m/{token}/activation", headers={"User-Agent": IPHONE})
    assert refused.status_code == 400
    assert "Activate" in page_text(refused)
    account = account_row(app, account_id)
    assert account.status is Status.CREATED and not account.enabled
    assert device_count(app, account_id) == 0

    assert browser.get(f"/m/{token}", headers={"User-Agent": IPHONE}).status_code == 200
    assert browser.get(f"/m/{token}/activation", headers={**APP, "User-Agent": IPHONE}).status_code == 200


def test_app_fetch_with_client_header_delivers_file_and_records_app_version(app, mail_settings, make_account):
    account_id = make_account(wizard=True)
    token = fresh_token(app, account_id)

    response = app.test_client().get(f"/m/{token}/activation",
                                     headers={"X-Provisio-Client": "12.3.1", "User-Agent": ANDROID})

    assert response.status_code == 200
    assert response.mimetype == "application/x-provisio-activation"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    document = response.get_json(force=True)
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert document["account"]["username"] == account.username
        assert document["account"]["password"] == accounts.sip_password(account)
        assert account.status is Status.ACTIVATED
        device = db.session.scalar(select(Device).where(Device.account_id == account_id))
        assert device.app_version == "12.3.1"
        assert device.platform is Platform.ANDROID


def fetch_document(app, account_id: int) -> dict:
    response = app.test_client().get(f"/m/{fresh_token(app, account_id)}/activation", headers=APP)
    assert response.status_code == 200
    return response.get_json(force=True)


def test_the_file_carries_the_accounts_own_profile_else_its_groups_else_none(app, mail_settings, make_account,
                                                                             other_group):
    with app.app_context():
        own = Profile(name="Edge", sip_host="sip.edge.example.net", sip_port=5070,
                      provisioning_host="prov.edge.example.net", transport="tcp", refetch_hours=6,
                      options={"codec": "opus"})
        db.session.add(own)
        db.session.commit()
        own_id = own.id

    mine = fetch_document(app, make_account(wizard=True, profile_id=own_id))
    assert mine["servers"]["sip"] == {"host": "sip.edge.example.net", "port": 5070, "transport": "tcp"}
    assert mine["servers"]["provisioning"] == {"host": "prov.edge.example.net"}
    assert mine["profile"] == {"name": "Edge", "options": {"codec": "opus"}}
    assert mine["refetch"]["interval_hours"] == 6

    groups = fetch_document(app, make_account(wizard=True))
    # No port was set: TLS's standard one.
    assert groups["servers"]["sip"] == {"host": "sip.example.net", "port": 5061, "transport": "tls"}
    assert groups["profile"]["name"] == "Standard"

    none = fetch_document(app, make_account(group_id=other_group))  # a plain account, a group without one
    assert none["servers"]["sip"] == {"host": None, "port": 5061, "transport": "tls"}
    assert none["profile"] == {"name": None, "options": {}}


def test_ten_concurrent_activations_of_one_link_deliver_exactly_one_file(app, live_server, mail_settings,
                                                                         make_account):
    account_id = make_account(wizard=True)
    token = fresh_token(app, account_id)
    start = threading.Barrier(10)

    def fetch(_n):
        start.wait(timeout=10)  # all ten leave together
        return requests.get(f"{live_server}/m/{token}/activation", headers=APP, timeout=30)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(fetch, range(10)))

    assert sorted(answer.status_code for answer in answers) == [200] + [410] * 9
    winner = next(answer for answer in answers if answer.status_code == 200)
    assert winner.headers["Content-Type"].startswith("application/x-provisio-activation")
    for loser in (answer for answer in answers if answer.status_code == 410):
        assert "password" not in loser.text and "ask your operator" in loser.text
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert winner.json()["account"]["password"] == accounts.sip_password(account)
        assert account.status is Status.ACTIVATED
        assert device_count(app, account_id) == 1
        assert [e.status for e in account.status_events].count(Status.ACTIVATED) == 1


# -- platforms and the page ------------------------------------------------------------------

@pytest.mark.parametrize("user_agent, platform", [
    (IPHONE, Platform.IOS), (ANDROID, Platform.ANDROID), (IPAD, Platform.IPADOS),
    (WINDOWS, Platform.WINDOWS), (LINUX, Platform.LINUX), (MAC, Platform.MACOS),
    ("curl/8.4.0", Platform.OTHER), ("", Platform.OTHER),
])
def test_platform_of_maps_user_agents_to_platforms(user_agent, platform):
    assert platform_of(user_agent) is platform


@pytest.mark.parametrize("user_agent, model, platform, download", [
    (IPHONE, "end-to-end", Platform.IOS, "https://apps.example.test/ios-e2e"),
    (IPHONE, "end-to-site", Platform.IOS, "https://apps.example.test/ios-e2s"),
    (ANDROID, "end-to-end", Platform.ANDROID, "https://apps.example.test/android-e2e"),
    (IPAD, "end-to-end", Platform.IPADOS, "https://apps.example.test/ipad-e2e"),
], ids=["iphone-e2e", "iphone-e2s", "android", "ipad"])
def test_install_sends_the_detected_platform_to_its_app_for_the_security_model(
        app, mail_settings, make_account, user_agent, model, platform, download):
    account_id = make_account(security_model=model)
    token = fresh_token(app, account_id)
    phone = app.test_client()
    html = open_page(phone, token, user_agent)
    assert f"<strong>{platform.label}</strong>" in html
    assert DETECTED.search(html).group(1) == platform.value
    assert "<svg" not in html  # no QR code on a phone or a tablet

    install = phone.post(f"/m/{token}/install", headers={"User-Agent": user_agent}, data={
        "csrf_token": CSRF.search(html).group(1), "platform": DETECTED.search(html).group(1)})

    assert install.status_code == 303
    assert install.headers["Location"] == download
    assert account_row(app, account_id).status is Status.INSTALLED


@pytest.mark.parametrize("user_agent, platform", [(WINDOWS, Platform.WINDOWS), (LINUX, Platform.LINUX)],
                         ids=["windows", "linux"])
def test_desktop_page_shows_inline_qr_and_platform_list_and_loads_nothing_from_elsewhere(
        app, mail_settings, make_account, user_agent, platform):
    token = fresh_token(app, make_account())
    html = open_page(app.test_client(), token, user_agent)

    assert f"<strong>{platform.label}</strong>" in html
    assert re.search(r"<svg[^>]*>.*?</svg>", html, re.S)
    assert qr_matches(html, f"{PUBLIC}/m/{token}")
    others = html.split("Not your device?", 1)[1]
    for other in (Platform.IOS, Platform.ANDROID, Platform.IPADOS, Platform.MACOS):
        assert other.label in others
    for tag, name, value in parse(html).urls:
        scheme = urlsplit(value).scheme
        if scheme == "provisio":  # the app's own URI scheme: hands the public link to the app
            assert parse_qs(urlsplit(value).query)["u"][0].startswith(f"{PUBLIC}/m/")
        else:
            assert value.startswith((f"{PUBLIC}/", "#")) or (
                value.startswith("/") and not value.startswith("//")), f"<{tag} {name}={value}>"


def test_ipados_fix_is_an_external_script_under_a_csp_without_unsafe_inline(app, mail_settings, make_account):
    token = fresh_token(app, make_account())
    client = app.test_client()
    response = client.get(f"/m/{token}", headers={"User-Agent": MAC})
    page = parse(page_text(response))

    assert {"src": "/static/js/mobile.js", "defer": None} in page.scripts
    assert all(script.get("src") for script in page.scripts)
    assert page.inline_code == "" and page.handlers == []
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    script = client.get("/static/js/mobile.js")
    assert script.status_code == 200
    assert "maxTouchPoints" in script.get_data(as_text=True) and "ipados" in script.get_data(as_text=True)


def test_install_without_a_download_url_shows_no_app_page_and_still_records_installed(
        app, mail_settings, make_account):
    account_id = make_account(security_model="end-to-site")  # only iOS has an end-to-site build
    token = fresh_token(app, account_id)
    phone = app.test_client()
    html = open_page(phone, token, ANDROID)
    assert "data-no-download" in html

    response = phone.post(f"/m/{token}/install", headers={"User-Agent": ANDROID}, data={
        "csrf_token": CSRF.search(html).group(1), "platform": "android"})

    assert response.status_code == 404
    assert f"No app for {Platform.ANDROID.label}" in page_text(response)
    assert account_row(app, account_id).status is Status.INSTALLED


def test_the_page_shows_what_changed_since_it_was_last_rendered(app, admin_id, mail_settings, make_account):
    account_id = make_account(owner="Ada Lovelace", security_model="end-to-end")
    token = fresh_token(app, account_id)
    phone = app.test_client()
    before = open_page(phone, token, ANDROID)
    assert "Hello Ada," in before and "data-no-download" not in before

    with app.app_context():
        account = db.session.get(Account, account_id)
        accounts.update_account(account, {"group_id": account.group_id, "owner": "Grace Hopper",
                                          "security_model": "end-to-site"},
                                actor=staff.get(admin_id))
    renamed = open_page(phone, token, ANDROID)
    assert "Hello Grace," in renamed and "end-to-site app" in renamed
    assert "data-no-download" in renamed  # there is no Android end-to-site build

    with app.app_context():
        urls = settings.get("download_urls")
        settings.save({"download_urls": {**urls, "android/end-to-site": "https://apps.example.test/a-e2s"}},
                      actor="test")
    assert "data-no-download" not in open_page(phone, token, ANDROID)
    assert open_page(phone, token, ANDROID) == open_page(phone, token, ANDROID)  # the same page twice


def test_the_page_sets_no_cookie_and_its_form_token_works_for_its_own_link_only(app, mail_settings,
                                                                                 make_account):
    mine, other = make_account(wizard=True), make_account(wizard=True)
    mine_token, other_token = fresh_token(app, mine), fresh_token(app, other)
    phone = app.test_client(use_cookies=False)
    response = phone.get(f"/m/{mine_token}", headers={"User-Agent": IPHONE})
    assert "Set-Cookie" not in response.headers
    form_token = CSRF.search(page_text(response)).group(1)

    for path in ("install", "activate"):
        refused = phone.post(f"/m/{other_token}/{path}", data={"csrf_token": form_token, "platform": "ios"})
        assert refused.status_code == 400
        assert "Form expired" in page_text(refused)
    assert account_row(app, other).status is Status.CREATED and device_count(app, other) == 0

    delivered = phone.post(f"/m/{mine_token}/activate", data={"csrf_token": form_token, "platform": "ios"})
    assert delivered.status_code == 200
    assert delivered.mimetype == "application/x-provisio-activation"
    assert account_row(app, mine).status is Status.ACTIVATED


def test_a_signed_in_staff_browser_opens_a_link_page_without_its_session(app, csr, mail_settings,
                                                                        make_account):
    """The link pages have no session (extensions.SessionInterface): a CSR trying a link in the browser
    the console is signed in on gets no cookie and no Vary: Cookie, and stays signed in."""
    token = fresh_token(app, make_account(wizard=True))
    assert csr.get("/").status_code == 200

    response = csr.get(f"/m/{token}", headers={"User-Agent": IPHONE})

    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert "cookie" not in response.headers.get("Vary", "").lower()
    assert csr.get("/").status_code == 200


# -- secrets ---------------------------------------------------------------------------------

def database_dump(app) -> str:
    """Every row of every table in the database, as text."""
    with app.app_context(), db.engine.connect() as connection:
        rows = []
        for name in inspect(connection).get_table_names():
            table = Table(name, MetaData(), autoload_with=connection)
            rows += [f"{name}: {tuple(row)!r}" for row in connection.execute(select(table))]
        return "\n".join(rows)


def test_no_raw_token_or_sip_password_is_left_anywhere_after_activation(app, csr, mail_settings,
                                                                        make_account, caplog):
    caplog.set_level(logging.DEBUG)
    account_id = make_account(wizard=True)
    assert send_link(csr, account_id).status_code == 302
    worker_output = run_worker(app)
    mail = mail_settings.inbox.messages[0]
    token = LINK.search(mail.get_content()).group(1)
    phone = app.test_client()
    html = open_page(phone, token)
    csrf = CSRF.search(html).group(1)
    phone.post(f"/m/{token}/install", data={"csrf_token": csrf, "platform": "ios"})
    response = phone.post(f"/m/{token}/activate", data={"csrf_token": csrf, "platform": "ios"},
                          headers={"User-Agent": IPHONE})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    document = response.get_json(force=True)
    password = document["account"]["password"]
    credential = document["client_api"]["credential"]
    with app.app_context():
        assert password == accounts.sip_password(db.session.get(Account, account_id))
        message = db.session.scalar(select(Message).where(Message.account_id == account_id))
        outbox_row = repr({column.name: getattr(message, column.name)
                           for column in Message.__table__.columns})

    dump = database_dump(app)
    assert "accounts:" in dump and "messages:" in dump and "devices:" in dump
    for secret in (token, password, credential):
        assert secret not in dump
    assert token not in outbox_row and password not in outbox_row
    assert password not in mail.as_string()
    assert password not in html and password not in worker_output
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert caplog.records  # the run did log (SQL, worker): the check below is not vacuous
    assert password not in logged and credential not in logged


# -- enabled / disabled ----------------------------------------------------------------------

def test_wizard_account_becomes_enabled_when_activated(app, mail_settings, make_account):
    account_id = make_account(wizard=True)
    assert account_row(app, account_id).enabled is False
    token = fresh_token(app, account_id)
    assert app.test_client().get(f"/m/{token}/activation", headers=APP).status_code == 200
    account = account_row(app, account_id)
    assert account.enabled is True and account.status is Status.ACTIVATED


def test_plain_account_stays_enabled_through_activation(app, mail_settings, make_account):
    account_id = make_account()
    assert account_row(app, account_id).enabled is True
    token = fresh_token(app, account_id)
    assert app.test_client().get(f"/m/{token}/activation", headers=APP).status_code == 200
    account = account_row(app, account_id)
    assert account.enabled is True and account.status is Status.ACTIVATED


def test_link_of_a_csr_disabled_account_is_refused_even_when_fresh(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    token = fresh_token(app, account_id)
    with app.app_context():  # disabled by staff without a newer link: the link's version is still current
        db.session.execute(update(Account).where(Account.id == account_id).values(staff_disabled=True,
                                                                                 enabled=False))
        db.session.commit()

    phone = app.test_client()
    assert phone.get(f"/m/{token}", headers={"User-Agent": IPHONE}).status_code == 410
    assert phone.get(f"/m/{token}/activation", headers=APP).status_code == 410
    account = account_row(app, account_id)
    assert account.status is Status.CREATED and account.enabled is False
    assert device_count(app, account_id) == 0


def test_sending_to_a_disabled_account_is_refused_with_a_message(app, csr, mail_settings, make_account):
    account_id = make_account()
    assert csr.post(f"/accounts/{account_id}/disable").status_code == 302

    page = csr.get(send_link(csr, account_id).headers["Location"])

    assert ("error", "Not sent: user0001 is disabled: enable it before sending a link.") in flashes(page)
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 0


# -- SNOM ------------------------------------------------------------------------------------

def test_snom_account_activation_returns_snom_xml_settings(app, mail_settings, make_account):
    account_id = make_account(account_type="snom", security_model=None, owner="Front Desk")
    token = fresh_token(app, account_id)
    phone = app.test_client()
    html = open_page(phone, token, "snomD785-SIP 10.1.33.33 000413922D24")

    response = phone.post(f"/m/{token}/activate", data={"csrf_token": CSRF.search(html).group(1)})

    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    root = ElementTree.fromstring(response.data)
    assert root.tag == "settings"
    phone_settings = root.find("phone-settings")
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert phone_settings.findtext("user_name") == account.username
        assert phone_settings.findtext("user_pass") == accounts.sip_password(account)
        assert phone_settings.findtext("user_host") == "sip.example.net:5061"
        assert account.status is Status.ACTIVATED


# -- what the page says, and asks, around Activate --------------------------------------------------

@pytest.mark.parametrize(("user_agent", "article"), [(IPHONE, "an iPhone"), (ANDROID, "an Android"),
                                                     (WINDOWS, "a Windows PC"), (MAC, "a Mac")])
def test_the_page_names_the_device_with_the_right_article(
    app, mail_settings, make_account, user_agent, article
):
    html = open_page(app.test_client(), fresh_token(app, make_account(wizard=True)), user_agent)
    assert f"This looks like {article.split()[0]} <strong>{article.split()[1]}" in html


@pytest.mark.parametrize("user_agent", [WINDOWS, LINUX, MAC])
def test_activate_on_a_computer_needs_the_persons_confirmation_and_uses_nothing_without_it(
        app, mail_settings, make_account, user_agent):
    account_id = make_account(wizard=True)
    token = fresh_token(app, account_id)
    phone = app.test_client()
    html = open_page(phone, token, user_agent)
    assert 'name="confirm" value="yes" required' in html
    form = {"csrf_token": CSRF.search(html).group(1), "platform": DETECTED.search(html).group(1)}

    refused = phone.post(f"/m/{token}/activate", data=form, headers={"User-Agent": user_agent})
    assert refused.status_code == 400
    assert "The app is installed on this computer" in page_text(refused)
    with app.app_context():
        assert db.session.get(Account, account_id).status is not Status.ACTIVATED

    confirmed = phone.post(f"/m/{token}/activate", data={**form, "confirm": "yes"},
                           headers={"User-Agent": user_agent})
    assert confirmed.status_code == 200 and confirmed.mimetype == "application/x-provisio-activation"
    with app.app_context():
        assert db.session.get(Account, account_id).status is Status.ACTIVATED


def test_a_phone_activates_without_the_computers_question(app, mail_settings, make_account):
    token = fresh_token(app, make_account(wizard=True))
    phone = app.test_client()
    html = open_page(phone, token, IPHONE)
    assert 'name="confirm"' not in html
    response = phone.post(f"/m/{token}/activate",
                          data={"csrf_token": CSRF.search(html).group(1), "platform": "ios"},
                          headers={"User-Agent": IPHONE})
    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path", "code"), [
    ("GET", "/m/{token}/install", 405), ("GET", "/m/{token}/activation", 400),
    ("GET", "/m/{token}/nope", 404), ("POST", "/m/{token}/activate", 400), ("GET", "/m/not-a-token", 410)])
def test_end_user_error_pages_show_nothing_of_the_staff_console(
    app, mail_settings, make_account, method, path, code
):
    token = fresh_token(app, make_account(wizard=True))
    phone = app.test_client()
    form = None
    if method == "POST":
        form = {"csrf_token": CSRF.search(open_page(phone, token, WINDOWS)).group(1)}
    response = phone.open(path.format(token=token), method=method, data=form, headers={"User-Agent": WINDOWS})

    assert response.status_code == code
    html = page_text(response)
    assert "mobile.css" in html
    assert "console" not in html.lower() and 'href="/"' not in html and "/auth/" not in html
