"""An admin in a real Chromium tries to make the activation file a web page: Settings says no,
next to the field."""

import pytest

from services import settings
from tests.e2e.test_console_browser import sign_in

pytestmark = pytest.mark.e2e


def test_settings_show_why_a_rendered_mime_type_and_a_browser_scheme_are_refused(
    app, live_server, page, admin_id
):
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/admin/settings")
    page.fill("#activation_mime_type", "text/html")
    page.fill("#app_uri_scheme", "javascript")
    page.click("text=Save settings")

    page.wait_for_selector(".field--error")
    errors = page.locator(".field__error").all_inner_texts()
    assert any("render or sniff" in error for error in errors), errors
    assert any("handled by the browser or another program" in error for error in errors), errors
    assert "Settings saved." not in page.inner_text("main")
    page.screenshot(path="/tmp/config-settings-refused.png", full_page=False)
    assert page.errors == []
    with app.app_context():
        assert settings.get("activation_mime_type") == "application/x-provisio-activation"
        assert settings.get("app_uri_scheme") == "provisio"
