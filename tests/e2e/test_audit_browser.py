"""An administrator reads the audit log in a real Chromium: outcome column and filter, UTC times."""

import re

import pytest

from extensions import db
from models import AuditEvent
from tests.support import PASSWORD

pytestmark = pytest.mark.e2e


def test_admin_filters_the_audit_log_by_outcome_and_reads_utc_times(app, live_server, page, admin_id):
    with app.app_context():
        db.session.add(AuditEvent(actor="mallory", action="auth.login_failed", ip="203.0.113.9",
                                  outcome="throttled"))
        db.session.commit()
    page.goto(f"{live_server}/auth/login")
    page.fill("#username", "alice")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server}/")

    page.goto(f"{live_server}/admin/audit")
    page.fill("input[name=outcome]", "throttled")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*outcome=throttled.*"))
    rows = page.locator("main tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00", cells[0])
    assert cells[1:3] == ["mallory", "auth.login_failed"] and cells[4:6] == ["203.0.113.9", "throttled"]
    page.screenshot(path="/tmp/logs-audit.png", full_page=True)
    assert page.errors == []
