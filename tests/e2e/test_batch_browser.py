"""Batch work in a real Chromium: search and a bulk action whose page follows the worker by itself (the
progress block is polled and swapped, the page reloads once to show the outcome), and a CSV import whose page
does the same."""

import threading

import pytest

from extensions import db
from models import Account
from services import bulk, jobs
from tests.e2e.test_console_browser import sign_in
from tests.webtools import run_worker

pytestmark = pytest.mark.e2e


def worker_soon(app, delay: float = 1.0) -> threading.Timer:
    """Run `flask worker --once` a moment later, as the worker beside the server would."""
    timer = threading.Timer(delay, run_worker, args=(app,))
    timer.start()
    return timer


def test_csr_searches_ticks_two_accounts_and_disables_them_in_bulk(
    app, live_server, page, csr_id, make_account
):
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
    page.wait_for_selector("text=Done: 2 accounts changed.", timeout=15_000)  # the page followed the job
    timer.join()
    assert page.errors == []
    with app.app_context():
        assert [db.session.get(Account, i).enabled for i in (first, second, other)] == [False, False, True]


def test_a_bulk_jobs_bar_moves_without_a_reload_and_the_page_shows_the_outcome(app, live_server, page, csr_id,
                                                                               make_account, monkeypatch):
    for n in range(3):
        make_account(owner=f"Dora Meier {n}")
    halfway, go_on = threading.Event(), threading.Event()
    progress = jobs.progress

    def progress_then_wait(job, done, phase=None):
        """Record the progress, then hold the worker after the first account until the test saw it."""
        progress(job, done, phase)
        if done == 1:
            halfway.set()
            go_on.wait(15)

    monkeypatch.setattr(bulk, "CHUNK", 1)  # a step per account, so the bar has steps to show
    monkeypatch.setattr(jobs, "progress", progress_then_wait)
    polls = []
    page.on("request", lambda request: request.url.endswith("/progress") and polls.append(request.headers))
    sign_in(page, live_server, "carl")
    page.goto(f"{live_server}/accounts?q=owner:dora")
    for box in page.locator("input[name=ids]").all():
        box.check()
    page.select_option("select[name=action]", "disable")
    page.click("text=Review…")
    page.click("text=Disable 3 accounts")
    page.wait_for_selector("text=0 of 3 done (0%)")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    timer = worker_soon(app, delay=0)
    try:
        assert halfway.wait(15)
        page.wait_for_selector("text=1 of 3 done (33%)", timeout=10_000)
        assert page.evaluate("window.sameDocument") is True  # the block moved, the page stayed
        assert page.get_attribute(".job-progress progress", "value") == "33"
    finally:
        go_on.set()
    page.wait_for_selector("text=Done: 3 accounts changed.", timeout=15_000)
    timer.join()
    assert page.evaluate("window.sameDocument") is None  # reloaded once the block said the job had finished
    assert page.locator(".job-progress").count() == 0
    assert polls and all(headers.get("x-provisio-poll") == "1" for headers in polls)  # no sign of a person
    assert page.errors == []


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
    page.wait_for_selector("text=2 accounts created, each disabled until its end user activates it.",
                           timeout=15_000)
    timer.join()
    assert page.errors == []
    with app.app_context():
        owners = sorted(db.session.scalars(db.select(Account.owner)))
    assert owners == ["Anna Meier", "Bruno Keller"]
