"""Helpers for the HTTP tests: signed-in clients and readers of flashes and field errors."""

import html
import re
import socket
import time

from tests.support import PASSWORD, Client

FLASH = re.compile(r'<div class="flash flash--(\w+)"[^>]*>(.*?)</div>', re.S)
FIELD_BLOCK = re.compile(r'<div class="field[^"]*field--error[^"]*">(.*?)</div>', re.S)
FIELD_ERROR = re.compile(r'<p class="field__error">(.*?)</p>', re.S)
CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def primed(browser: Client) -> Client:
    """Give a signed-in client its CSRF token now, read from a page every signed-in user can open."""
    page = browser.http.get("/auth/password").get_data(as_text=True)
    match = CSRF_TOKEN.search(page)
    if match:
        browser.csrf = match.group(1)
    return browser


def sign_in(app, username: str, password: str = PASSWORD) -> Client:
    """Return a new client signed in as `username`, ready to post forms."""
    browser = Client(app)
    response = browser.login(username, password)
    assert response.status_code == 302, f"{username} could not sign in"
    return browser


def page_text(response) -> str:
    return response.get_data(as_text=True)


def flashes(response) -> list[tuple[str, str]]:
    """Return the (category, message) pairs flashed on a page."""
    return [(category, html.unescape(message).strip())
            for category, message in FLASH.findall(page_text(response))]


def field_errors(response, name: str) -> list[str]:
    """Return the error messages shown under the form field `name`."""
    for block in FIELD_BLOCK.findall(page_text(response)):
        if f'for="{name}"' in block or f'id="{name}"' in block:
            return [html.unescape(error).strip() for error in FIELD_ERROR.findall(block)]
    return []


def is_sign_in_redirect(response) -> bool:
    return response.status_code == 302 and "/auth/login" in response.headers["Location"]


def run_worker(app, threads: int = 1) -> str:
    """Run `flask worker --once`: every due job and message, then exit; return what it printed."""
    result = app.test_cli_runner().invoke(args=["worker", "--once", "--threads", str(threads)])
    assert result.exit_code == 0, result.output
    return result.output


def detached(app, model, row_id: int):
    """One row read in its own app context, still readable after it (None if it is gone)."""
    from extensions import db

    with app.app_context():
        row = db.session.get(model, row_id)
        if row is not None:
            db.session.expunge(row)
        return row


def issue_link(app, account_id: int, kind: str = "link") -> str:
    """Queue a secure link for the account as a CSR's Send does; return its token as the worker signs it.

    The message goes by e-mail when the account has an address, else by SMS (configure a gateway then).
    """
    from sqlalchemy import select

    from extensions import db
    from models import Account, Channel, MessageKind, StaffUser
    from services import links, messaging

    with app.app_context():
        account = db.session.get(Account, account_id)
        actor = db.session.scalars(select(StaffUser).order_by(StaffUser.id)).first()
        channel = Channel.EMAIL if account.email else Channel.SMS
        message = messaging.queue(account, MessageKind(kind), channel, actor=actor)
        return links.token_of(message)


def wait_for_port(port: int, process, what: str) -> None:
    """Wait until a server this test started (a subprocess.Popen) listens on 127.0.0.1:port, or fail
    saying why."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")
