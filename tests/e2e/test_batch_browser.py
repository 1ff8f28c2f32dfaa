"""Batch work in a real Chromium: search and a bulk action followed on its self-refreshing page, and a
CSV import whose page follows the worker by itself (its script polls; the page must not be reloaded)."""

import threading

import pytest

from extensions import db
from models import Account
from tests.e2e.test_console_browser import sign_in
from tests.webtools import run_worker

pytestmark = pytest.mark.e2e


def worker_soon(app, delay: float = 1.0) -> threading.Timer:
    """Run `flask worker --once` a moment later, as the worker beside the server would."""
    timer = threading.Timer(delay, run_worker, args=(app,))
    timer.start()
    return timer


def test_csr_searches_ticks_two_accounts_and_disables_them_in_bulk(app, live_server, page, csr_id, make_account):
    first = make_account(owner="Anna Meier")
    second = make_account(owner="Bruno Meier")
    other = make_account(owner="Carla Keller")
    sign_in(page, live_server, "carl")
    page.goto(f"{live_server}/accounts")
    page.fill("input[name=q]", "owner:meier")
    page.click("form[role=search] button[type=submit]")
    assert sorted(page.locator("tbody td:nth-child(3)").all_inner_texts()) == ["Anna Meier", "Bruno Meier"]

    for box in page.locator("input[name=ids]").all():
        box.check()
    page.select_option("select[name=action]", "disable")
    page.click("text=Review…")
    assert "Disable — 2 accounts" in page.inner_text("main")
    page.click("text=Disable 2 accounts")
    page.wait_for_selector("text=0 of 2 done")

    timer = worker_soon(app)
    page.wait_for_selector("text=Done: 2 accounts changed.", timeout=15_000)  # the page refreshed itself
    timer.join()
    assert page.errors == []
    with app.app_context():
        assert [db.session.get(Account, i).enabled for i in (first, second, other)] == [False, False, True]


def test_import_page_follows_the_check_by_itself_then_imports(app, live_server, page, csr_id, tmp_path):
    csv = tmp_path / "accounts.csv"
    csv.write_text("callerid,owner\n+41791234501,Anna Meier\n+41791234502,Bruno Keller\n", encoding="utf-8")
    sign_in(page, live_server, "carl")
    page.goto(f"{live_server}/imports/")
    page.set_input_files("input[type=file]", str(csv))
    page.select_option("select[name=group_id]", label="Group A")
    page.click("text=Upload and check")
    page.wait_for_selector("progress")

    timer = worker_soon(app)
    page.wait_for_selector("text=2 rows ready to import", timeout=15_000)
    timer.join()
    page.click("text=Import 2 accounts")
    page.wait_for_selector("progress")  # confirmed: waiting for the worker to write

    timer = worker_soon(app)
    page.wait_for_selector("text=2 accounts created, each disabled until its end user activates it.", timeout=15_000)
    timer.join()
    assert page.errors == []
    with app.app_context():
        owners = sorted(db.session.scalars(db.select(Account.owner)))
    assert owners == ["Anna Meier", "Bruno Keller"]
