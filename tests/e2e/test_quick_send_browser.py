"""A CSR sends a message from a row of the account list in Chromium, without opening the account."""

import pytest
from sqlalchemy import select

from extensions import db
from models import Channel, Message, MessageKind
from tests.e2e.test_console_browser import sign_in

pytestmark = pytest.mark.e2e


def test_a_row_of_the_list_sends_an_installation_message_and_stays_on_the_search(
        app, live_server, page, csr_id, make_account, mail_settings):
    account_id = make_account(owner="Quick Person", callerid="4401", email="quick@example.com")
    make_account(owner="Other Person")
    sign_in(page, live_server, "carl")
    page.goto(f"{live_server}/accounts?q=owner:quick")

    row = page.locator("tbody tr:has(input[name=ids])", has_text="Quick Person")
    row.locator("select[name=kind]").select_option("install")
    row.locator("button", has_text="Send by e-mail").click()

    page.wait_for_url(f"{live_server}/accounts?q=owner:quick")
    assert page.locator("tbody tr:has(input[name=ids])").count() == 1  # still the search's one account
    assert page.errors == []
    with app.app_context():
        message = db.session.scalar(select(Message).where(Message.account_id == account_id))
        assert (message.kind, message.channel, message.recipient) == (
            MessageKind.INSTALL, Channel.EMAIL, "quick@example.com")
