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


def test_an_admin_sets_a_gateways_send_rate_and_a_rate_it_cannot_have_is_refused(app, live_server, page,
                                                                                  admin_id):
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}/admin/settings")
    page.select_option("#sms_gateway", "vonage")
    page.click("summary:text-is('Vonage')")
    page.fill("#sms_vonage_api_key", "key")
    page.fill("#sms_vonage_rate", "0")
    page.click("text=Save settings")  # the browser itself refuses a rate under 1: nothing is sent
    assert page.eval_on_selector("#sms_vonage_rate", "field => field.validity.rangeUnderflow")
    with app.app_context():
        assert not (settings.get("sms").get("vonage") or {}).get("rate")

    page.fill("#sms_vonage_rate", "5")
    page.click("text=Save settings")
    page.wait_for_selector("text=Settings saved.")
    page.locator("#sms_vonage_rate").scroll_into_view_if_needed()
    page.screenshot(path="/tmp/settings-send-rate.png", full_page=False)
    assert page.errors == []
    with app.app_context():
        assert settings.get("sms")["vonage"]["rate"] == 5
