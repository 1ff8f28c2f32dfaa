"""An administrator previewing a runaway message template sees why it is refused, at once."""

import pytest

from tests.e2e.test_console_browser import sign_in

pytestmark = pytest.mark.e2e


def test_previewing_a_runaway_template_shows_the_limit_under_the_text(live_server, page, admin_id):
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/admin/templates/link/sms")
    page.fill("textarea[name=body]", "{{ owner * 100000000 }}")
    page.click("button[name=preview]")
    page.wait_for_load_state()
    error = page.locator(".field__error").first
    assert "would be longer than 20,000 characters" in error.inner_text()
    assert "Fix the template to see a preview." in page.content()
    page.screenshot(path="/tmp/input-template-preview.png", full_page=True)
    assert page.errors == []
