"""The console's layout in a real Chromium: one navigation line on a laptop, nothing overlapping on a
phone."""

import itertools

import pytest

from tests.e2e.test_console_browser import sign_in

pytestmark = pytest.mark.e2e

CONTROLS = ", ".join(f"main {tag}:visible" for tag in ("a", "button", "input", "select", "summary"))


def boxes(page, selector: str) -> list[tuple[str, dict]]:
    """Each visible element's name and box, outside a table that scrolls sideways (it may run past the
    edge)."""
    found = []
    for element in page.locator(selector).all():
        if element.evaluate("e => !!e.closest('.table-wrap')"):
            continue
        box = element.bounding_box()
        if box and box["width"] and box["height"]:
            found.append((element.evaluate("e => e.outerHTML.slice(0, 80)"), box))
    return found


def overlapping(first: dict, second: dict) -> bool:
    width = min(first["x"] + first["width"], second["x"] + second["width"]) - max(first["x"], second["x"])
    height = min(first["y"] + first["height"], second["y"] + second["height"]) - max(first["y"], second["y"])
    return width > 1 and height > 1


def nested(first: str, second: str) -> bool:
    return first in second or second in first


def test_the_navigation_fits_one_line_at_1280_px_and_the_admin_menu_reaches_its_pages(
        browser, live_server, admin_id):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    sign_in(page, live_server, "alice")

    tops = {round(element.bounding_box()["y"]) for element in page.locator(".nav > a, .nav summary").all()}
    assert len(tops) == 1, tops

    page.click("summary:has-text('Administration')")
    page.click(".nav__items >> text=Settings")
    page.wait_for_url(f"{live_server}/admin/settings")
    assert page.locator(".nav__menu[data-current]").count() == 1
    page.close()


@pytest.mark.parametrize("path", ["/accounts", "/admin/settings", "/messages", "/accounts/1",
                                  "/accounts/1/edit"])
def test_nothing_overlaps_on_a_phone_wide_screen(browser, live_server, admin_id, make_account, path):
    make_account(owner="Anna Meier")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server}{path}")

    found = boxes(page, CONTROLS)
    clashes = [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(found, 2)
               if overlapping(box_a, box_b) and not nested(a, b)]

    assert found and clashes == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no page-wide sideways scroll
    page.close()
