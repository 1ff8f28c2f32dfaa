"""No 500 on any input: page cursors, long searches, deep JSON and template previews answer clearly
and stay bounded."""

import html
import json

import pytest
from sqlalchemy import select

from extensions import db
from models import Account, Channel, Message, MessageKind, MessageStatus, Profile
from services import keyset, message_templates, messaging, search, settings, staff
from services.errors import Invalid
from services.template_sandbox import MAX_TEXT
from tests.security.html_forms import forms
from tests.webtools import field_errors, flashes, page_text, run_worker

HUGE = "99999999999999999999"  # past 64 bits: SQLite's driver overflows; past 32, PostgreSQL's INTEGER ids do


# -- 1. page cursors -------------------------------------------------------------------------------

@pytest.mark.parametrize("page", ["/accounts", "/messages", "/admin/audit"])
@pytest.mark.parametrize("before", [HUGE, str(keyset.MAX_ID + 1), "-5", "0", "abc", "1e3", "٣"])
def test_a_page_cursor_that_is_no_id_answers_400_with_a_message(admin, make_account, page, before):
    make_account()
    response = admin.get(page, query_string={"before": before})
    assert response.status_code == 400
    assert "This page link is broken" in page_text(response)


def test_the_account_list_keeps_its_search_box_under_a_broken_cursor(csr, make_account):
    make_account()
    response = csr.get("/accounts", query_string={"q": "meier", "before": HUGE})
    assert response.status_code == 400
    assert 'name="q"' in page_text(response) and 'value="meier"' in page_text(response)
    assert "This page link is broken" in page_text(response)


@pytest.mark.parametrize("page", ["/accounts", "/messages"])
def test_a_viewer_sending_a_huge_cursor_gets_400(viewer, make_account, page):
    make_account()
    assert viewer.get(f"{page}?before={HUGE}").status_code == 400


@pytest.mark.parametrize("page", ["/accounts", "/messages", "/admin/audit"])
def test_the_largest_cursor_lists_the_first_page(admin, make_account, page):
    make_account(username="still-listed")
    response = admin.get(page, query_string={"before": str(keyset.MAX_ID)})
    assert response.status_code == 200


def test_every_keyset_list_checks_its_cursor_in_one_place(ctx, admin_id):
    """A service called with a cursor past 64 bits refuses it before the database sees it."""
    from models import AuditEvent

    with ctx(), pytest.raises(keyset.BadCursor):
        keyset.newest_first(select(AuditEvent), AuditEvent.id, before=int(HUGE), page_size=10)


@pytest.mark.parametrize("url", ["/accounts/{}", "/accounts/bulk/{}", "/imports/{}", "/admin/groups/{}/edit"])
@pytest.mark.parametrize("number", [HUGE, str(keyset.MAX_ID + 1)])
def test_an_id_larger_than_any_row_id_in_a_path_is_404(admin, url, number):
    assert admin.get(url.format(number)).status_code == 404


# -- 2. searches with many terms -------------------------------------------------------------------

def _terms(count: int) -> str:
    return " ".join(f"{n}*" for n in range(10, 10 + count))  # digits and a wildcard: the widest expansion


def test_a_search_of_200_bare_terms_answers_400_with_the_limit(csr, make_account):
    make_account()
    query = " ".join(["a"] * 200)  # 399 characters: SQLite's "Expression tree is too large" before
    response = csr.get("/accounts", query_string={"q": query})
    assert response.status_code == 400
    text = html.unescape(page_text(response))
    assert f"at most {search.MAX_TERMS} are allowed" in text and 'name="q"' in text


def test_the_largest_accepted_search_runs(csr, make_account):
    make_account(username="10000000")
    response = csr.get("/accounts", query_string={"q": _terms(search.MAX_TERMS)})
    assert response.status_code == 200
    assert "10000000" in page_text(response)
    assert csr.get("/accounts", query_string={"q": _terms(search.MAX_TERMS + 1)}).status_code == 400


def test_the_bulk_review_refuses_200_terms_with_the_limit(csr, make_account):
    make_account()
    response = csr.post("/accounts/bulk", {"q": " ".join(["a"] * 200), "action": "disable", "scope": "all"},
                        follow_redirects=True)
    assert response.status_code == 400
    assert any(f"at most {search.MAX_TERMS} are allowed" in text for _, text in flashes(response))


def test_the_export_refuses_200_terms_with_the_limit(viewer, make_account):
    make_account()
    response = viewer.post("/accounts/export", {"q": " ".join(["a"] * 200)}, follow_redirects=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert any(f"at most {search.MAX_TERMS} are allowed" in text for _, text in flashes(response))


def test_the_largest_accepted_search_exports(viewer, make_account):
    make_account(username="10000000")
    response = viewer.post("/accounts/export", {"q": _terms(search.MAX_TERMS)})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "10000000" in response.get_data(as_text=True)


# -- 3. deep or huge JSON in admin forms -----------------------------------------------------------

PROFILE = {"name": "Deep", "description": "", "sip_host": "sip.example.net",
           "provisioning_host": "prov.example.net", "transport": "tls", "refetch_hours": "12"}
DEEP = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"


def _profiles(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Profile.name)))


@pytest.mark.parametrize(("options", "message"), [
    (DEEP, "nests 5001 levels deep"),
    ('{"a": "' + "x" * 30_000 + '"}', "characters long"),
    ('{"a": NaN}', "NaN is not JSON"),
    ('{"a": 1e999}', "too large a number"),
])
def test_profile_options_too_deep_or_huge_get_a_field_error(app, admin, options, message):
    response = admin.post("/admin/profiles/new", {**PROFILE, "options": options})
    assert response.status_code == 200
    assert any(message in error for error in field_errors(response, "options"))
    assert _profiles(app) == []


def test_profile_options_of_the_allowed_depth_are_saved(app, admin):
    options = '{"a": ' + "[" * 15 + "]" * 15 + "}"  # 16 levels with the object itself
    response = admin.post("/admin/profiles/new", {**PROFILE, "options": options})
    assert response.status_code == 302
    assert _profiles(app) == ["Deep"]


def _settings_form(admin) -> dict:
    page = page_text(admin.get("/admin/settings"))
    [form] = [form for form in forms(page) if form.method == "post" and not form.action]  # the page itself
    return form.data()


def test_settings_applications_nested_5000_deep_get_a_field_error(ctx, admin):
    before = None
    with ctx():
        before = settings.get("applications")
    response = admin.post("/admin/settings", {**_settings_form(admin), "applications": DEEP})
    assert response.status_code == 200
    assert any("nests 5001 levels deep" in error for error in field_errors(response, "applications"))
    with ctx():
        assert settings.get("applications") == before


def test_brackets_inside_json_strings_do_not_count_as_depth(ctx, admin):
    applications = json.dumps({"sip": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[sip.example.com"})
    response = admin.post("/admin/settings", {**_settings_form(admin), "applications": applications})
    assert response.status_code == 302
    with ctx():
        assert settings.get("applications")["sip"].endswith("sip.example.com")


# -- 4. message templates: bounded work and output -------------------------------------------------

ENDLESS = {
    "a range of 10**9": "{% for i in range(10**9) %}x{% endfor %}",
    "a listed range": "{{ range(99999999)|list }}",
    "a recursive macro": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "a macro fanning out": ("{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}"
                            "{{ m(40) }}"),
    "a placeholder repeated": "{{ owner * 100000000 }}",
    "a string repeated": "{{ 'x' * 10**9 }}",
    "a list repeated": "{{ [1] * 10**9 }}",
    "a padded format": "{{ '%1000000000s' % 'x' }}",
    "a format of long values": "{{ '%s%s%s' % (owner * 2000, owner * 2000, owner * 2000) }}",
    "a join over a huge range": "{{ range(10**9)|join(',') }}",
    "a join with a long separator": "{{ range(10000)|join('x' * 10000) }}",
    "nested loops under the range cap": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}"
                                        "{% endfor %}",
    "output past the limit": "{% for i in range(10000) %}{{ owner }}{% endfor %}",
    "a doubling concatenation": "{% set s = owner %}" + "{% set s = s ~ s %}" * 40 + "{{ s|length }}",
    "a doubling nested list": ("{% set a = [owner] %}" + "{% set a = [a, a, a, a, a, a, a, a] %}" * 30
                               + "{{ a }}"),
    "a power tower": "{{ 10 ** (10 ** 10) }}",
    "a squaring loop": "{% set x = 99999999999 %}" + "{% set x = x * x %}" * 40 + "{{ x }}",
    "a padding method": "{{ owner.center(1000000000) }}",
    "a str.format width": "{{ '{:>1000000000}'.format(1) }}",
    "a padding filter": "{{ owner|center(1000000000) }}",
    "lorem ipsum": "{{ lipsum(10**9) }}",
    "a growing replace": "{{ (owner * 100)|replace('', owner * 100) }}",
    "a division by zero": "{{ 1 / 0 }}",
    "deeply nested brackets": "{{ " + "(" * 1000 + "1" + ")" * 1000 + " }}",
}


@pytest.mark.parametrize("body", list(ENDLESS.values()), ids=list(ENDLESS))
def test_a_template_preview_that_would_run_away_gets_a_field_error(admin, body):
    response = admin.post("/admin/templates/link/sms", {"subject": "", "body": body, "preview": "1"})
    assert response.status_code == 200
    [error] = field_errors(response, "body")
    assert error.startswith("The template does not work:")


@pytest.mark.parametrize("body", list(ENDLESS.values()), ids=list(ENDLESS))
def test_a_template_that_would_run_away_is_not_saved(ctx, admin, body):
    response = admin.post("/admin/templates/link/email", {"subject": "Hi", "body": body})
    assert response.status_code == 200
    assert field_errors(response, "body")[0].startswith("The template does not work:")
    with ctx():
        default = message_templates.DEFAULTS[MessageKind.LINK]
        assert message_templates.get(MessageKind.LINK, Channel.EMAIL) == default


def test_a_template_using_the_allowed_features_still_renders(ctx):
    body = ("Hello {{ owner|upper|truncate(20) }}"
            "{% for c in username %}{{ loop.cycle('-', '') }}{% endfor %} "
            "{{ [owner, group]|join(', ') }} {{ username.split('2')|length }} {{ link }}")
    with ctx():
        text = message_templates.render(body, message_templates.PLACEHOLDERS)
    assert text.startswith("Hello ANNA MEIER") and text.endswith(message_templates.PLACEHOLDERS["link"])


def test_a_render_stops_at_the_output_limit(ctx):
    rows = MAX_TEXT // 1000 + 1  # a thousand characters each: one row more than the limit
    body = f"{{% for i in range({rows}) %}}{{% for j in range(1000) %}}x{{% endfor %}}{{% endfor %}}"
    with ctx(), pytest.raises(Invalid, match=f"text would be longer than {MAX_TEXT:,} characters"):
        message_templates.render(body, message_templates.PLACEHOLDERS)


def test_the_worker_fails_a_stored_runaway_template_instead_of_hanging(
    app, ctx, admin_id, make_account
):
    """A template stored before today's limits (written directly) is refused by the worker's bounded
    render."""
    account_id = make_account()
    with ctx():
        runaway = {"subject": "Hi", "body": ENDLESS["a placeholder repeated"]}
        settings.save({"templates": {"link/email": runaway},
                       "public_base_url": "https://activate.example.test"}, actor="test")
        messaging.queue(db.session.get(Account, account_id), MessageKind.LINK, Channel.EMAIL,
                        actor=staff.get(admin_id))
    run_worker(app)
    with ctx():
        message = db.session.scalar(select(Message))
        assert message.status is MessageStatus.FAILED
        assert "The template does not work" in (message.last_error or "")


def test_the_template_list_shows_a_stored_template_that_no_longer_renders(ctx, admin):
    with ctx():
        settings.save({"templates": {"link/sms": {"subject": "", "body": ENDLESS["a string repeated"]}}},
                      actor="test")
    response = admin.get("/admin/templates")
    assert response.status_code == 200 and "Does not render" in page_text(response)
    edit = admin.get("/admin/templates/link/sms")
    assert edit.status_code == 200
    assert field_errors(edit, "body")[0].startswith("The template does not work:")


# -- 5. what the property test found ---------------------------------------------------------------

@pytest.mark.parametrize(("url", "form"), [
    ("/admin/groups/new", {"name": "Nul", "profile_id": "0", "description": "a\x00b"}),
    ("/admin/profiles/new", {**PROFILE, "description": "a\x00b", "options": "{}"}),
])
def test_a_nul_character_in_a_form_answers_400_and_writes_nothing(app, admin, url, form):
    """PostgreSQL cannot store NUL in text: the insert failed as a 500 there (SQLite stored it)."""
    response = admin.post(url, form)
    assert response.status_code == 400
    assert "NUL character" in page_text(response)
    assert _profiles(app) == []


@pytest.mark.parametrize("url", ["/messages?gateway=a%00b", "/admin/audit?actor=a%00b",
                                 "/admin/audit?action=%00"])
def test_a_nul_character_in_a_filter_answers_400(admin, url):
    response = admin.get(url)
    assert response.status_code == 400
    assert "NUL character" in page_text(response)


def test_a_nul_character_in_the_search_keeps_the_search_box(admin):
    response = admin.get("/accounts?q=mei%00er")
    assert response.status_code == 400
    assert "Search syntax" in page_text(response) and "NUL character" in page_text(response)
