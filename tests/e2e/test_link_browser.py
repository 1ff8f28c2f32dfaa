"""The end user's link page in a real Chromium: Activate downloads the file under the account's name."""

import pytest
from sqlalchemy import update

from extensions import db
from models import Account, Status
from tests.webtools import issue_link

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("username", ["ünï€ode", 'q"uote;x=.html'],
                         ids=["non-latin-1", "quote-and-semicolon"])
def test_activate_saves_the_file_under_the_accounts_own_name(app, live_server, page, make_account, username):
    account_id = make_account(wizard=True)
    with app.app_context():  # a row older than today's username rules
        db.session.execute(update(Account).where(Account.id == account_id).values(username=username))
        db.session.commit()
    token = issue_link(app, account_id)
    page.goto(f"{live_server}/m/{token}")
    page.screenshot(path=f"/tmp/links-landing-{account_id}.png")

    page.check("form[action$='/activate'] input[name=confirm]")  # a computer: the person confirms first
    with page.expect_download() as download:
        page.click("form[action$='/activate'] button[type=submit]")

    # The whole name, nothing cut at the quote or the semicolon; Chromium itself replaces the
    # characters a file name may not hold (the quote) with "_".
    assert download.value.suggested_filename == f"{username}.provisio".replace('"', "_")
    assert page.errors == []
    with app.app_context():
        assert db.session.get(Account, account_id).status is Status.ACTIVATED
