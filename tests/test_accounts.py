"""SIP accounts: creation (plain and wizard), field rules, edits, actions, scoping and the list."""

import re
from html import unescape

import pytest
from sqlalchemy import func, insert, select, text

from extensions import db
from models import (
    Account,
    AuditEvent,
    Channel,
    LicenceState,
    Message,
    MessageKind,
    PublicKey,
    RuleKind,
    Status,
    StatusEvent,
    utcnow,
)
from services import account_rules, accounts, staff
from tests.webtools import flashes, issue_link, primed

SIP_PASSWORD = "Sip-password-1234"

# Every action button of the account page, with the audit action it writes.
ACTIONS = {
    "disable": "account.disable",
    "enable": "account.enable",
    "revoke-keys": "account.revoke_keys",
    "rotate-password": "account.rotate_password",
    "clear-licence": "account.clear_licence",
}


# --- helpers ---------------------------------------------------------------------------


def browser_form(group_id: int, **overrides) -> dict:
    """What a browser posts from the account form; None leaves a field (or checkbox) out."""
    data = {
        "account_type": "pgsm", "username": "anna", "password": SIP_PASSWORD,
        "password_repeat": SIP_PASSWORD, "callerid": "+41791234567", "secondary_callerid": "",
        "group_id": str(group_id), "profile_id": "0", "owner": "Anna Meier",
        "email": "anna@example.com", "description": "", "security_model": "end-to-end",
        "obfuscation": "y", "obfuscation_key": "9", "mac_address": "", "deny": "", "permit": "",
        "licence_expires_on": "",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def wizard_form(group_id: int, **overrides) -> dict:
    """The wizard page has no password fields."""
    return browser_form(group_id, **{"password": None, "password_repeat": None,
                                     "username": "40000001", **overrides})


def edit_form(app, account_id: int, **overrides) -> dict:
    """What the edit page posts back unchanged, plus overrides."""
    with app.app_context():
        account = db.session.get(Account, account_id)
        data = browser_form(
            account.group_id, account_type=None, password=None, password_repeat=None,
            secondary_callerid=None, username=account.username, callerid=account.callerid,
            owner=account.owner, email=account.email, description=account.description,
            security_model=account.security_model or "end-to-end",
            obfuscation="y" if account.obfuscation else None,
            obfuscation_key=account.obfuscation_key, keepalive="y" if account.keepalive else None,
            mac_address=account.mac_address or "",
            deny="\n".join(account.rules_of(RuleKind.DENY)),
            permit="\n".join(account.rules_of(RuleKind.PERMIT)),
            profile_id=str(account.profile_id or 0),
        )
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def field_errors(html: str, name: str) -> list[str]:
    """The error messages rendered inside the form field called `name`."""
    for block in re.findall(r'<div class="field[^"]*">(.*?)</div>', html, re.S):
        if f'name="{name}"' in block:
            return [unescape(e) for e in re.findall(r'<p class="field__error">(.*?)</p>', block, re.S)]
    raise AssertionError(f"the page has no field {name}")


def input_value(html: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
    return unescape(re.search(r'value="([^"]*)"', tag).group(1))


def account_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Account.id)))


def audit_actions(app, account_id: int) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.target_type == "account",
                                            AuditEvent.target_id == account_id)
            .order_by(AuditEvent.id)
        ))


def snapshot(app, account_id: int) -> dict:
    """Every column of one account, read straight from the table."""
    with app.app_context():
        row = db.session.execute(text("SELECT * FROM accounts WHERE id = :id"), {"id": account_id})
        return dict(row.mappings().one())


def listed_usernames(html: str) -> list[str]:
    return re.findall(r'<td><a href="/accounts/\d+">([^<]+)</a></td>', html)


@pytest.fixture
def admin(admin):
    return primed(admin)


@pytest.fixture
def csr(csr):
    return primed(csr)


@pytest.fixture
def viewer(viewer):
    return primed(viewer)


@pytest.fixture
def csr_other_account(make_account, other_group) -> int:
    """An account in Group B, which the CSR (Group A only) does not serve."""
    return make_account(group_id=other_group, username="outsider", callerid="+41791110000")


# --- plain creation ----------------------------------------------------------------------


def test_plain_account_created_by_post_is_enabled_at_once(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group))
    assert response.status_code == 302
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "anna"))
        assert response.headers["Location"].endswith(f"/accounts/{account.id}")
        assert account.enabled is True
        assert account.wizard is False
        assert account.group_id == group
        assert account.owner == "Anna Meier"


def test_plain_account_starts_created_with_one_status_event(app, csr, group):
    csr.post("/accounts/new", browser_form(group))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "anna"))
        assert account.status is Status.CREATED
        events = list(db.session.scalars(select(StatusEvent).where(StatusEvent.account_id == account.id)))
        assert [(e.status, e.actor) for e in events] == [(Status.CREATED, "carl")]


def test_plain_creation_writes_an_account_create_audit_row(app, csr, group):
    csr.post("/accounts/new", browser_form(group))
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.create"))
        account_id = db.session.scalar(select(Account.id).where(Account.username == "anna"))
        assert event is not None
        assert (event.actor, event.target_id, event.target) == ("carl", account_id, "anna")
        assert event.detail == {"wizard": False}


def test_plain_creation_refuses_different_password_repeat(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, password_repeat="Something-else-99"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "password_repeat") == ["The passwords differ."]
    assert account_count(app) == 0


def test_a_username_differing_only_in_case_from_another_is_refused(app, csr, group, make_account):
    make_account(username="plain1")

    response = csr.post("/accounts/new", browser_form(group, username="PLAIN1", callerid="+41797770001"))

    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "username") == [
        "PLAIN1 is already used by another account."]
    assert account_count(app) == 1


@pytest.mark.parametrize("path", ["/accounts/new", "/accounts/wizard"])
@pytest.mark.parametrize("username", ["x", "anna meier", "jörg", "a;b"])
def test_a_username_no_sip_client_could_register_with_is_refused_next_to_the_field(app, csr, group, profile,
                                                                                    path, username):
    form = browser_form if path == "/accounts/new" else wizard_form
    response = csr.post(path, form(group, username=username))

    assert response.status_code == 200
    [error] = field_errors(response.get_data(as_text=True), "username")
    assert error.startswith("A username has 3 to 64 characters: letters, digits and")
    assert account_count(app) == 0


def test_an_edit_to_a_bad_username_is_refused_and_changes_nothing(app, csr, make_account):
    account_id = make_account(username="kept01")

    response = csr.post(f"/accounts/{account_id}/edit", edit_form(app, account_id, username="no good"))

    assert response.status_code == 200
    assert snapshot(app, account_id)["username"] == "kept01"


def test_plain_creation_refuses_a_weak_password_next_to_the_field(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, password="short", password_repeat="short"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "password") == ["Use at least 12 characters."]
    assert account_count(app) == 0


# --- wizard -----------------------------------------------------------------------------


def test_wizard_prefills_a_numeric_username_of_the_configured_length(app, csr):
    app.config["USERNAME_LENGTH"] = 6
    response = csr.get("/accounts/wizard")
    assert response.status_code == 200
    assert re.fullmatch(r"[1-9]\d{5}", input_value(response.get_data(as_text=True), "username"))


def test_wizard_default_username_has_eight_digits(csr):
    username = input_value(csr.get("/accounts/wizard").get_data(as_text=True), "username")
    assert re.fullmatch(r"\d{8}", username)


def test_wizard_prefilled_username_skips_names_already_taken(app, csr, make_account, monkeypatch):
    make_account(username="10000000")
    draws = iter([0, 0, 1])  # 10000000 twice (taken), then 10000001 (free)
    monkeypatch.setattr(account_rules.secrets, "randbelow", lambda _n: next(draws))
    username = input_value(csr.get("/accounts/wizard").get_data(as_text=True), "username")
    assert username == "10000001"


def test_wizard_generates_a_long_password_and_never_shows_it(app, csr, group):
    response = csr.post("/accounts/wizard", wizard_form(group))
    assert response.status_code == 302
    detail_url = response.headers["Location"]
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "40000001"))
        password = accounts.sip_password(account)
        account_id = account.id
    assert len(password) >= 20
    pages = [csr.get(url).get_data(as_text=True) for url in (
        detail_url, f"/accounts/{account_id}/edit", f"/accounts/{account_id}/status", "/accounts",
        f"/accounts/{account_id}/delete",
    )]
    pages.append(csr.get(detail_url, follow_redirects=True).get_data(as_text=True))
    for page in pages:
        assert password not in page


def test_wizard_password_is_at_least_20_characters_even_if_configured_shorter(app, csr, group):
    app.config["GENERATED_PASSWORD_LENGTH"] = 8
    csr.post("/accounts/wizard", wizard_form(group))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "40000001"))
        assert len(accounts.sip_password(account)) >= 20


def test_wizard_page_has_no_password_inputs(csr):
    html = csr.get("/accounts/wizard").get_data(as_text=True)
    assert 'name="password"' not in html
    assert 'type="password"' not in html


def test_wizard_account_is_disabled_until_activation(app, csr, group):
    csr.post("/accounts/wizard", wizard_form(group))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "40000001"))
        assert account.enabled is False
        assert account.wizard is True
        assert account.status is Status.CREATED
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.create"))
        assert event.detail == {"wizard": True}


def test_wizard_ignores_a_password_posted_by_hand(app, csr, group):
    csr.post("/accounts/wizard", wizard_form(group, password=SIP_PASSWORD, password_repeat=SIP_PASSWORD))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "40000001"))
        assert accounts.sip_password(account) != SIP_PASSWORD


def test_wizard_without_any_profile_shows_error_at_profile_and_writes_nothing(app, admin, other_group):
    response = admin.post("/accounts/wizard", wizard_form(other_group, profile_id="0"))
    assert response.status_code == 200
    errors = field_errors(response.get_data(as_text=True), "profile_id")
    assert errors == ["Choose a provisioning profile: group Group B has none."]
    assert account_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "account.create")) == 0


def test_a_wizard_accounts_edit_cannot_leave_it_without_a_profile(app, admin, make_account, other_group,
                                                                 profile):
    account_id = make_account(wizard=True, group_id=other_group, profile_id=profile)  # its own profile

    response = admin.post(f"/accounts/{account_id}/edit", edit_form(app, account_id, profile_id="0",
                                                                     owner="Changed"))

    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "profile_id") == [
        "Choose a provisioning profile: group Group B has none."]
    row = snapshot(app, account_id)
    assert (row["profile_id"], row["owner"]) == (profile, "Anna Meier")


def test_wizard_in_group_without_profile_accepts_a_chosen_profile(app, admin, other_group, profile):
    response = admin.post("/accounts/wizard", wizard_form(other_group, profile_id=str(profile)))
    assert response.status_code == 302
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "40000001"))
        assert account.profile_id == profile
        assert account.effective_profile.name == "Standard"


def test_wizard_uses_the_groups_profile_when_none_is_chosen(app, csr, group, profile):
    csr.post("/accounts/wizard", wizard_form(group, profile_id="0"))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "40000001"))
        assert account.profile_id is None
        assert account.effective_profile.id == profile


def test_wizard_refuses_a_number_without_leading_plus(app, csr, group):
    response = csr.post("/accounts/wizard", wizard_form(group, callerid="0791234567"))
    assert response.status_code == 200
    errors = field_errors(response.get_data(as_text=True), "callerid")
    assert errors == ["Automatic activation needs an international number with a leading +."]
    assert account_count(app) == 0


# --- phone numbers ----------------------------------------------------------------------


def test_number_with_spaces_is_stored_in_e164(app, csr, group):
    csr.post("/accounts/new", browser_form(group, callerid="+41 79 123 45 67",
                                           secondary_callerid="+41 (0)79-765.43.21"))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "anna"))
        assert account.callerid == "+41791234567"
        assert account.secondary_callerid == "+41797654321"


@pytest.mark.parametrize("number", ["+41 12", "+999 1234567", "+41 abc", "12ab"])
def test_invalid_number_is_refused_next_to_its_field(app, csr, group, number):
    response = csr.post("/accounts/new", browser_form(group, callerid=number))
    assert response.status_code == 200
    errors = field_errors(response.get_data(as_text=True), "callerid")
    assert len(errors) == 1 and errors[0]
    assert account_count(app) == 0


def test_short_internal_number_is_allowed_for_a_plain_account(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, callerid="111"))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Account.callerid).where(Account.username == "anna")) == "111"


# --- uniqueness -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "posted", "field"),
    [
        ({"username": "anna"}, {}, "username"),
        ({"callerid": "+41791234567"}, {}, "callerid"),
        ({"secondary_callerid": "+41791234567"}, {}, "callerid"),
        ({"callerid": "+41797654321"}, {"secondary_callerid": "+41797654321"}, "secondary_callerid"),
        ({"secondary_callerid": "+41797654321"}, {"secondary_callerid": "+41 79 765 43 21"},
         "secondary_callerid"),
    ],
    ids=["username", "callerid", "callerid-vs-secondary", "secondary-vs-callerid", "secondary"],
)
def test_duplicate_value_is_refused_next_to_its_field(app, csr, group, make_account, existing,
                                                      posted, field):
    make_account(**existing)
    response = csr.post("/accounts/new", browser_form(group, **posted))
    assert response.status_code == 200
    errors = field_errors(response.get_data(as_text=True), field)
    assert len(errors) == 1 and "already used by another account" in errors[0]
    assert account_count(app) == 1


def test_duplicate_mac_address_is_refused_next_to_its_field(app, csr, group, make_account):
    make_account(account_type="snom", mac_address="000413922D24")
    response = csr.post("/accounts/new", browser_form(group, account_type="snom",
                                                      mac_address="00:04:13:92:2d:24"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "mac_address") == [
        "000413922D24 is already used by another account."]
    assert account_count(app) == 1


def test_edit_to_another_accounts_username_is_refused_and_changes_nothing(app, csr, make_account):
    make_account(username="taken01")
    mine = make_account(username="mine0001")
    response = csr.post(f"/accounts/{mine}/edit", edit_form(app, mine, username="TAKEN01", owner="Changed"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "username") == [
        "TAKEN01 is already used by another account."]
    row = snapshot(app, mine)
    assert (row["username"], row["owner"]) == ("mine0001", "Anna Meier")


def _insert_clash_after_check(app, monkeypatch, **columns):
    """Let another writer commit a clashing row between the service's check and its commit."""
    check = accounts._check_unique

    def racing_check(account):
        check(account)
        with db.engine.begin() as connection:  # a separate connection: the other request
            connection.execute(insert(Account).values(
                password_encrypted="x", group_id=account.group_id, **columns))

    monkeypatch.setattr(accounts, "_check_unique", racing_check)


def test_unique_index_race_on_create_becomes_a_field_error(app, csr, group, monkeypatch):
    _insert_clash_after_check(app, monkeypatch, username="anna", callerid="+41790000001")
    response = csr.post("/accounts/new", browser_form(group))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "username") == [
        "That value is already used by another account."]
    with app.app_context():
        # Only the racing row exists: the form's account and its audit row were rolled back.
        assert db.session.scalars(select(Account.callerid)).all() == ["+41790000001"]
        assert db.session.scalar(select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "account.create")) == 0


def test_unique_index_race_on_secondary_number_names_the_secondary_field(app, csr, group, monkeypatch):
    _insert_clash_after_check(app, monkeypatch, username="racer", callerid="+41790000001",
                              secondary_callerid="+41797654321")
    response = csr.post("/accounts/new", browser_form(group, secondary_callerid="+41797654321"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert field_errors(html, "secondary_callerid") == ["That value is already used by another account."]
    assert field_errors(html, "callerid") == []
    assert account_count(app) == 1


def test_unique_index_race_on_edit_becomes_a_field_error(app, csr, group, make_account, monkeypatch):
    mine = make_account(username="mine0001")
    _insert_clash_after_check(app, monkeypatch, username="racer01", callerid="+41791112233")
    response = csr.post(f"/accounts/{mine}/edit", edit_form(app, mine, username="racer01", owner="Changed"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "username") == [
        "That value is already used by another account."]
    row = snapshot(app, mine)
    assert (row["username"], row["owner"]) == ("mine0001", "Anna Meier")


# --- secondary number -------------------------------------------------------------------


def test_secondary_number_without_primary_is_refused(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, callerid="", secondary_callerid="+41797654321"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "callerid") == ["This field is required."]
    assert account_count(app) == 0


def test_secondary_number_equal_to_primary_is_refused(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, secondary_callerid="+41 79 123 45 67"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "secondary_callerid") == [
        "The secondary number must differ from the primary."]
    assert account_count(app) == 0


def test_edit_page_shows_both_numbers_read_only_and_how_to_change_them(csr, make_account):
    account_id = make_account(callerid="+41791234999", secondary_callerid="+41797654321")
    html = csr.get(f"/accounts/{account_id}/edit").get_data(as_text=True)
    assert 'name="callerid"' not in html and 'name="secondary_callerid"' not in html
    assert "+41791234999" in html and "+41797654321" in html  # shown read-only
    assert "delete the account and create it again" in html


@pytest.mark.parametrize("field", ["callerid", "secondary_callerid"])
def test_posting_a_number_to_edit_changes_nothing(app, csr, make_account, field):
    account_id = make_account(callerid="+41791234999", secondary_callerid="+41797654321")
    before = snapshot(app, account_id)
    response = csr.post(f"/accounts/{account_id}/edit",
                        edit_form(app, account_id, **{field: "+41798887766"}, owner="Changed"))
    assert response.status_code == 302
    after = snapshot(app, account_id)
    assert (after["callerid"], after["secondary_callerid"], after["owner"]) == (
        before["callerid"], before["secondary_callerid"], "Changed")


# --- form defaults ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/accounts/new", "/accounts/wizard"])
def test_new_account_form_has_obfuscation_on_with_key_9(csr, url):
    html = csr.get(url).get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*name="obfuscation"[^>]*>', html).group(0)
    assert "checked" in checkbox
    assert input_value(html, "obfuscation_key") == "9"
    keepalive = re.search(r'<input[^>]*name="keepalive"[^>]*>', html).group(0)
    assert "checked" not in keepalive


@pytest.mark.parametrize("url", ["/accounts/new", "/accounts/wizard"])
def test_new_account_form_warns_about_keepalive_on_clients_older_than_11_1(csr, url):
    html = csr.get(url).get_data(as_text=True)
    assert "Clients older than 11.1 cannot answer keep-alive" in html


def test_pgsm_account_gets_obfuscation_and_keepalive_as_posted(app, csr, group):
    csr.post("/accounts/new", browser_form(group, obfuscation=None, obfuscation_key="7", keepalive="y",
                                           security_model="end-to-site"))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "anna"))
        assert (account.obfuscation, account.obfuscation_key, account.keepalive) == (False, "7", True)
        assert account.security_model == "end-to-site"


def test_obfuscation_without_key_is_refused(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, obfuscation_key=""))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "obfuscation_key") == [
        "Obfuscation needs a key (the default is 9)."]
    assert account_count(app) == 0


# --- SNOM -------------------------------------------------------------------------------


def test_snom_account_stores_normalised_mac_and_ordered_rules(app, csr, group):
    response = csr.post("/accounts/new", browser_form(
        group, account_type="snom", mac_address="00:04:13:92:2d:24",
        deny="0.0.0.0/0.0.0.0\n10.0.0.0/8\n", permit="216.27.242.66/255.255.255.255\r\n192.168.1.0/24",
    ))
    assert response.status_code == 302
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "anna"))
        assert account.mac_address == "000413922D24"
        stored = sorted((r.kind.value, r.position, r.network) for r in account.rules)
        assert stored == [
            ("deny", 0, "0.0.0.0/0.0.0.0"),
            ("deny", 1, "10.0.0.0/255.0.0.0"),
            ("permit", 0, "216.27.242.66/255.255.255.255"),
            ("permit", 1, "192.168.1.0/255.255.255.0"),
        ]
        assert account.rules_of(RuleKind.DENY) == ["0.0.0.0/0.0.0.0", "10.0.0.0/255.0.0.0"]


def test_snom_account_clears_pgsm_only_fields(app, csr, group):
    csr.post("/accounts/new", browser_form(group, account_type="snom", keepalive="y",
                                           obfuscation="y", obfuscation_key="9"))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "anna"))
        assert account.security_model is None
        assert account.obfuscation is False
        assert account.obfuscation_key == ""
        assert account.keepalive is False


def test_snom_rules_are_shown_on_the_account_page(csr, make_account):
    account_id = make_account(account_type="snom", deny=["0.0.0.0/0.0.0.0"],
                              permit=["216.27.242.66/255.255.255.255"])
    html = csr.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert "0.0.0.0/0.0.0.0" in html
    assert "216.27.242.66/255.255.255.255" in html


def test_snom_edit_page_prefills_rules_and_saving_keeps_them(app, csr, make_account):
    account_id = make_account(account_type="snom", deny=["0.0.0.0/0.0.0.0"],
                              permit=["216.27.242.66/255.255.255.255"])
    html = csr.get(f"/accounts/{account_id}/edit").get_data(as_text=True)
    deny = re.search(r'<textarea[^>]*name="deny"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    permit = re.search(r'<textarea[^>]*name="permit"[^>]*>(.*?)</textarea>', html, re.S).group(1)
    assert deny.strip() == "0.0.0.0/0.0.0.0"
    assert permit.strip() == "216.27.242.66/255.255.255.255"
    csr.post(f"/accounts/{account_id}/edit", edit_form(app, account_id, deny=deny, permit=permit,
                                                       owner="Desk 4"))
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert account.owner == "Desk 4"
        assert account.rules_of(RuleKind.DENY) == ["0.0.0.0/0.0.0.0"]
        assert account.rules_of(RuleKind.PERMIT) == ["216.27.242.66/255.255.255.255"]


def test_bad_access_rule_is_refused_next_to_its_field(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, account_type="snom", deny="10.0.0.1"))
    assert response.status_code == 200
    errors = field_errors(response.get_data(as_text=True), "deny")
    assert len(errors) == 1 and "10.0.0.1" in errors[0]
    assert account_count(app) == 0


def test_bad_mac_address_is_refused_next_to_its_field(app, csr, group):
    response = csr.post("/accounts/new", browser_form(group, account_type="snom", mac_address="00:04:13"))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "mac_address") == [
        "A MAC address has 12 hexadecimal digits, e.g. 00:04:13:92:2D:24."]
    assert account_count(app) == 0


def test_pgsm_account_keeps_no_rules_and_no_mac(app, csr, group):
    csr.post("/accounts/new", browser_form(group, mac_address="00:04:13:92:2d:24",
                                           deny="0.0.0.0/0.0.0.0", permit="216.27.242.66/32"))
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "anna"))
        assert account.rules == []
        assert account.mac_address is None


# --- SIP password at rest ---------------------------------------------------------------


def test_sip_password_is_not_stored_in_clear_and_decrypts_back(app, make_account):
    account_id = make_account(password=SIP_PASSWORD)
    row = snapshot(app, account_id)
    assert all(SIP_PASSWORD not in str(value) for value in row.values())
    assert row["password_encrypted"]
    with app.app_context():
        assert accounts.sip_password(db.session.get(Account, account_id)) == SIP_PASSWORD


# --- edit and delete --------------------------------------------------------------------


def test_edit_saves_and_audits_the_changed_fields(app, csr, make_account):
    account_id = make_account(owner="Anna Meier")
    response = csr.post(f"/accounts/{account_id}/edit",
                        edit_form(app, account_id, owner="Anna Muster", email="anna.muster@example.com"))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/accounts/{account_id}")
    row = snapshot(app, account_id)
    assert (row["owner"], row["email"]) == ("Anna Muster", "anna.muster@example.com")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.update"))
        assert (event.actor, event.target_id) == ("carl", account_id)
        assert event.detail == {"fields": ["email", "owner"]}


def test_edit_page_shows_the_current_values(csr, make_account):
    account_id = make_account(owner="Anna Meier", username="anna0001")
    html = csr.get(f"/accounts/{account_id}/edit").get_data(as_text=True)
    assert input_value(html, "owner") == "Anna Meier"
    assert input_value(html, "username") == "anna0001"


def test_delete_get_shows_a_confirmation_and_changes_nothing(app, csr, make_account):
    account_id = make_account(username="doomed")
    response = csr.get(f"/accounts/{account_id}/delete")
    assert response.status_code == 200
    assert "Delete doomed?" in response.get_data(as_text=True)
    assert account_count(app) == 1
    assert "account.delete" not in audit_actions(app, account_id)


def test_delete_post_removes_the_account_and_audits_it(app, csr, make_account):
    account_id = make_account(username="doomed")
    response = csr.post(f"/accounts/{account_id}/delete")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/accounts")
    assert account_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(StatusEvent.id))) == 0
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.delete"))
        assert (event.actor, event.target_id, event.target) == ("carl", account_id, "doomed")
    assert csr.get(f"/accounts/{account_id}").status_code == 404


# --- actions ----------------------------------------------------------------------------


def test_disable_turns_the_account_off_and_kills_links(app, csr, make_account):
    account_id = make_account()
    before = snapshot(app, account_id)
    response = csr.post(f"/accounts/{account_id}/disable")
    assert response.status_code == 302
    after = snapshot(app, account_id)
    assert before["enabled"] and not after["enabled"]
    assert after["link_version"] == before["link_version"] + 1


def test_enable_turns_a_wizard_account_on(app, csr, make_account):
    account_id = make_account(wizard=True)
    assert not snapshot(app, account_id)["enabled"]
    csr.post(f"/accounts/{account_id}/enable")
    assert snapshot(app, account_id)["enabled"]


def test_rotate_password_sets_a_new_encrypted_password_and_kills_links(app, csr, make_account):
    account_id = make_account(password=SIP_PASSWORD)
    before = snapshot(app, account_id)
    csr.post(f"/accounts/{account_id}/rotate-password")
    after = snapshot(app, account_id)
    assert after["password_encrypted"] != before["password_encrypted"]
    assert after["link_version"] == before["link_version"] + 1
    with app.app_context():
        new_password = accounts.sip_password(db.session.get(Account, account_id))
    assert new_password != SIP_PASSWORD
    assert len(new_password) >= 20


def test_revoke_keys_revokes_every_key_and_locks_uploads(app, csr, make_account):
    account_id = make_account()
    with app.app_context():
        db.session.add_all([PublicKey(account_id=account_id, key_pem=f"pem{n}", fingerprint=f"fp{n}")
                            for n in range(3)])
        db.session.commit()
    response = csr.post(f"/accounts/{account_id}/revoke-keys", follow_redirects=True)
    assert "3 keys of user0001 revoked" in response.get_data(as_text=True)
    with app.app_context():
        keys = db.session.scalars(select(PublicKey).where(PublicKey.account_id == account_id)).all()
        assert len(keys) == 3 and all(key.revoked_at is not None for key in keys)
        assert db.session.get(Account, account_id).keys_locked is True


def test_clear_licence_marks_it_cleared_and_unbinds_the_device(app, csr, make_account):
    account_id = make_account()
    with app.app_context():
        account = db.session.get(Account, account_id)
        account.licence_state, account.licence_device = LicenceState.VALID, "device-1234"
        db.session.commit()
    csr.post(f"/accounts/{account_id}/clear-licence")
    row = snapshot(app, account_id)
    assert row["licence_state"] == LicenceState.CLEARED.value
    assert row["licence_device"] is None


@pytest.mark.parametrize(("action", "audit_action"), ACTIONS.items())
def test_each_action_writes_its_audit_row(app, csr, make_account, action, audit_action):
    account_id = make_account()
    response = csr.post(f"/accounts/{account_id}/{action}")
    assert response.status_code == 302
    assert audit_actions(app, account_id)[-1] == audit_action


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_refuse_get(app, csr, make_account, action):
    account_id = make_account()
    before = snapshot(app, account_id)
    assert csr.get(f"/accounts/{account_id}/{action}").status_code == 405
    assert snapshot(app, account_id) == before


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_need_the_csrf_token(app, csr, make_account, action):
    account_id = make_account()
    before = snapshot(app, account_id)
    assert csr.post(f"/accounts/{account_id}/{action}", csrf=False).status_code == 400
    assert snapshot(app, account_id) == before


# --- scoping and roles ------------------------------------------------------------------


SCOPED_REQUESTS = [
    ("get", ""), ("get", "/status"), ("get", "/edit"), ("post", "/edit"), ("get", "/delete"),
    ("post", "/delete"), *[("post", f"/{action}") for action in ACTIONS],
]


@pytest.mark.parametrize(("method", "suffix"), SCOPED_REQUESTS)
def test_csr_gets_404_for_another_groups_account(app, csr, csr_other_account, method, suffix):
    before = snapshot(app, csr_other_account)
    url = f"/accounts/{csr_other_account}{suffix}"
    data = edit_form(app, csr_other_account, owner="Hijacked") if suffix == "/edit" else {}
    response = csr.get(url) if method == "get" else csr.post(url, data)
    assert response.status_code == 404
    assert snapshot(app, csr_other_account) == before


@pytest.mark.parametrize("url", ["/accounts/new", "/accounts/wizard"])
def test_csr_cannot_create_an_account_in_another_group(app, csr, other_group, profile, url):
    form = browser_form(other_group, profile_id=str(profile), username="40000001")
    response = csr.post(url, form)
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "group_id")
    assert account_count(app) == 0


def test_csr_group_choices_list_only_their_groups(csr, group, other_group):
    html = csr.get("/accounts/new").get_data(as_text=True)
    assert f'<option value="{group}"' in html
    assert f'<option value="{other_group}"' not in html


def test_service_refuses_to_create_in_a_group_the_csr_does_not_serve(app, csr_id, other_group):
    from services.errors import Invalid

    data = {"username": "sneaky", "password": SIP_PASSWORD, "callerid": "+41791234567",
            "account_type": "pgsm", "security_model": "end-to-end", "group_id": other_group}
    with app.app_context():
        with pytest.raises(Invalid) as caught:
            accounts.create(data, wizard=False, actor=staff.get(csr_id))
        assert caught.value.field == "group_id"
        assert db.session.scalar(select(func.count(Account.id))) == 0


def test_csr_cannot_move_an_account_to_another_group(app, csr, make_account, other_group):
    account_id = make_account()
    response = csr.post(f"/accounts/{account_id}/edit", edit_form(app, account_id, group_id=str(other_group)))
    assert response.status_code == 200
    assert field_errors(response.get_data(as_text=True), "group_id")
    assert snapshot(app, account_id)["group_id"] != other_group


VIEWER_POSTS = ["/edit", "/delete", *[f"/{action}" for action in ACTIONS]]


@pytest.mark.parametrize("suffix", VIEWER_POSTS)
def test_viewer_gets_403_on_every_post_and_nothing_changes(app, viewer, make_account, suffix):
    account_id = make_account()
    before = snapshot(app, account_id)
    data = edit_form(app, account_id, owner="Changed") if suffix == "/edit" else {}
    response = viewer.post(f"/accounts/{account_id}{suffix}", data)
    assert response.status_code == 403
    assert snapshot(app, account_id) == before
    assert audit_actions(app, account_id) == ["account.create"]


@pytest.mark.parametrize("url", ["/accounts/new", "/accounts/wizard"])
def test_viewer_cannot_create_accounts(app, viewer, group, url):
    response = viewer.post(url, browser_form(group))
    assert response.status_code == 403
    assert account_count(app) == 0


@pytest.mark.parametrize("path", ["/accounts/new", "/accounts/wizard", "/accounts/{id}/edit",
                                  "/accounts/{id}/delete"])
def test_a_viewer_gets_403_on_the_form_pages_at_once_not_after_filling_them(viewer, make_account, path):
    account_id = make_account()

    response = viewer.get(path.format(id=account_id))

    assert response.status_code == 403
    assert "Your role can only view." in response.get_data(as_text=True)


def test_a_viewer_sees_no_button_leading_to_a_form_page(viewer, make_account):
    account_id = make_account()

    pages = viewer.get("/accounts").get_data(as_text=True) + viewer.get(f"/accounts/{account_id}").get_data(
        as_text=True)

    for path in ("/accounts/new", "/accounts/wizard", f"/accounts/{account_id}/edit",
                 f"/accounts/{account_id}/delete"):
        assert f'href="{path}"' not in pages


def test_the_list_says_how_many_accounts_match_the_search(app, csr, make_account):
    app.config["PAGE_SIZE"] = 2
    for n in range(3):
        make_account(owner=f"Counted Person {n}")
    make_account(owner="Someone Else")

    page = csr.get("/accounts?q=owner:counted").get_data(as_text=True)

    assert "3 accounts match; 2 on this page." in page


def test_past_its_counting_limit_the_list_says_more_than(app, csr, make_account, monkeypatch):
    monkeypatch.setattr(accounts, "COUNT_LIMIT", 2)
    for n in range(3):
        make_account(owner=f"Counted Person {n}")

    page = csr.get("/accounts?q=owner:counted").get_data(as_text=True)

    assert "More than 2 accounts match." in page


def test_a_row_of_the_list_sends_a_secure_link_without_opening_the_account(app, csr, make_account,
                                                                           mail_settings):
    account_id = make_account(owner="Quick Person", callerid="4401", email="quick@example.com")
    page = csr.get("/accounts?q=owner:quick").get_data(as_text=True)
    row_form = re.search(rf'<form method="post" action="/accounts/{account_id}/send" class="quick-send">'
                         r"(.*?)</form>", page, re.S).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', row_form))

    response = csr.post(f"/accounts/{account_id}/send", {**fields, "kind": "link"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/accounts?q=owner:quick"
    with app.app_context():
        message = db.session.scalar(select(Message).where(Message.account_id == account_id))
        assert (message.kind, message.channel) == (MessageKind.LINK, Channel.EMAIL)


def test_the_bulk_action_has_no_default_and_the_destructive_ones_come_last(csr, make_account):
    make_account()
    page = csr.get("/accounts").get_data(as_text=True)
    select_html = re.search(r'<select[^>]*name="action"[^>]*>(.*?)</select>', page, re.S).group(1)
    options = re.findall(r'<option[^>]*value="([^"]*)"', select_html)

    assert options[0] == "" and options[-2:] == ["enable", "disable"]
    assert 'selected value="disable"' not in select_html and 'value="disable" selected' not in select_html


def test_a_bulk_review_without_an_action_starts_nothing_and_says_why(app, csr, make_account):
    account_id = make_account()
    response = csr.post("/accounts/bulk", {"action": "", "scope": "selected", "ids": str(account_id)})

    assert response.status_code == 302
    assert ("error", "Choose an action and which accounts it applies to.") in flashes(
        csr.get(response.headers["Location"]))


def test_viewer_can_read_an_account_in_their_group(viewer, make_account):
    account_id = make_account(username="readable")
    response = viewer.get(f"/accounts/{account_id}")
    assert response.status_code == 200
    assert "readable" in response.get_data(as_text=True)


def test_account_pages_require_sign_in(client, make_account):
    account_id = make_account()
    response = client.get(f"/accounts/{account_id}")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


# --- the list ---------------------------------------------------------------------------


def test_list_shows_every_column_of_an_account(csr, make_account):
    make_account(username="listed", owner="Bruno Keller", callerid="+41791230077")
    html = csr.get("/accounts").get_data(as_text=True)
    # After the selection checkbox a CSR has for bulk actions:
    row = re.search(r"<tr>\s*<td><input [^>]*value=\"\d+\"[^>]*></td>\s*"
                    r"<td><a[^>]*>listed</a></td>(.*?)</tr>",
                    html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[:6] == ["Bruno Keller", "+41791230077", "PGSM", "Group A", "Yes", "Created"]
    assert re.fullmatch(rf"{utcnow():%Y-%m-%d} \d\d:\d\d", cells[6])


def test_list_shows_a_wizard_account_as_not_enabled(csr, make_account):
    make_account(wizard=True, username="waiting")
    html = csr.get("/accounts").get_data(as_text=True)
    row = re.search(r"<td><a[^>]*>waiting</a></td>(.*?)</tr>", html, re.S).group(1)
    assert '<span class="no">No</span>' in row


def test_list_filters_by_group(admin, make_account, group, other_group):
    make_account(username="in-a")
    make_account(username="in-b", group_id=other_group)
    assert listed_usernames(admin.get(f"/accounts?group={group}").get_data(as_text=True)) == ["in-a"]
    assert listed_usernames(admin.get(f"/accounts?group={other_group}").get_data(as_text=True)) == ["in-b"]
    assert sorted(listed_usernames(admin.get("/accounts").get_data(as_text=True))) == ["in-a", "in-b"]


def test_list_filters_by_status(app, admin, make_account):
    make_account(username="fresh")
    activated = make_account(username="done")
    with app.app_context():
        accounts.set_status(db.session.get(Account, activated), Status.ACTIVATED, actor="test")
        db.session.commit()
    html = admin.get("/accounts?status=activated").get_data(as_text=True)
    assert listed_usernames(html) == ["done"]
    assert "Activated" in html
    assert listed_usernames(admin.get("/accounts?status=created").get_data(as_text=True)) == ["fresh"]


def test_csr_list_shows_only_their_groups(csr, make_account, other_group):
    make_account(username="mine")
    make_account(username="theirs", group_id=other_group)
    assert listed_usernames(csr.get("/accounts").get_data(as_text=True)) == ["mine"]
    assert listed_usernames(csr.get(f"/accounts?group={other_group}").get_data(as_text=True)) == ["mine"]


def _walk_pages(browser, url: str) -> list[list[str]]:
    pages = []
    while url:
        html = browser.get(url).get_data(as_text=True)
        pages.append(listed_usernames(html))
        link = re.search(r'<a class="button" href="([^"]*before=[^"]*)">Next page', html)
        url = unescape(link.group(1)) if link else None
        assert len(pages) < 20, "pagination does not end"
    return pages


def test_list_pages_with_the_before_cursor_show_every_account_once(app, admin, make_account):
    app.config["PAGE_SIZE"] = 2
    names = [f"page{n}" for n in range(5)]
    for name in names:
        make_account(username=name)
    pages = _walk_pages(admin, "/accounts")
    assert [len(page) for page in pages] == [2, 2, 1]
    seen = [name for page in pages for name in page]
    assert seen == list(reversed(names))  # newest first, each exactly once


def test_list_pagination_keeps_the_filter(app, admin, make_account, other_group):
    app.config["PAGE_SIZE"] = 2
    for n in range(3):
        make_account(username=f"aaa{n}")
        make_account(username=f"bbb{n}", group_id=other_group)
    pages = _walk_pages(admin, f"/accounts?group={other_group}")
    assert [name for page in pages for name in page] == ["bbb2", "bbb1", "bbb0"]


def test_full_last_page_has_no_next_link(app, admin, make_account):
    app.config["PAGE_SIZE"] = 2
    make_account(username="one")
    make_account(username="two")
    assert _walk_pages(admin, "/accounts") == [["two", "one"]]


@pytest.mark.parametrize("query", ["group=abc", "status=bogus", "group=99999",
                                   "group=1&status=activated&before=1"])
def test_list_answers_invalid_filters_without_error(admin, make_account, query):
    make_account()
    assert admin.get(f"/accounts?{query}").status_code == 200


@pytest.mark.parametrize("query", ["before=xyz", "before=-5"])
def test_list_answers_a_broken_page_cursor_with_its_message(admin, make_account, query):
    """A cursor that is no id was ignored (xyz) or gave an empty page (-5); now it says so (400, no 500)."""
    make_account()
    response = admin.get(f"/accounts?{query}")
    assert response.status_code == 400
    assert "This page link is broken" in response.get_data(as_text=True)


def test_list_ignores_an_invalid_status_filter(admin, make_account):
    make_account(username="still-listed")
    assert listed_usernames(admin.get("/accounts?status=bogus").get_data(as_text=True)) == ["still-listed"]


# --- live status ------------------------------------------------------------------------


def test_status_fragment_shows_the_status_label(app, csr, make_account):
    account_id = make_account()
    response = csr.get(f"/accounts/{account_id}/status")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Created" in html
    assert "<html" not in html  # a fragment, not a page
    with app.app_context():
        accounts.set_status(db.session.get(Account, account_id), Status.INSTALLATION_SENT,
                            actor="gateway", channel="sms")
        db.session.commit()
    assert "Installation SMS sent" in csr.get(f"/accounts/{account_id}/status").get_data(as_text=True)


def test_status_fragment_tells_waiting_for_activation_from_disabled_by_staff(csr, make_account):
    account_id = make_account(wizard=True)
    assert "Waiting for activation" in csr.get(f"/accounts/{account_id}/status").get_data(as_text=True)

    csr.post(f"/accounts/{account_id}/disable")

    status = csr.get(f"/accounts/{account_id}/status").get_data(as_text=True)
    assert "Disabled by staff" in status and "Waiting for activation" not in status


def test_a_wizard_account_waiting_for_activation_can_be_disabled_and_then_cannot_activate(
        app, csr, make_account):
    account_id = make_account(wizard=True)
    page = csr.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert f"/accounts/{account_id}/disable" in page and f"/accounts/{account_id}/enable" in page
    token = issue_link(app, account_id)

    assert csr.post(f"/accounts/{account_id}/disable").status_code == 302

    fetch = app.test_client().get(f"/m/{token}/activation", headers={"X-Provisio-Client": "2.4.1"})
    assert fetch.status_code == 410
    row = snapshot(app, account_id)
    assert (row["enabled"], row["staff_disabled"]) == (False, True)
    page = csr.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert f"/accounts/{account_id}/disable" not in page and f"/accounts/{account_id}/enable" in page


def test_revoking_one_key_says_one_key(app, csr, make_account):
    account_id = make_account()
    with app.app_context():
        db.session.add(PublicKey(account_id=account_id, key_pem="pem", fingerprint="fp"))
        db.session.commit()
    response = csr.post(f"/accounts/{account_id}/revoke-keys", follow_redirects=True)
    assert "1 key of user0001 revoked" in response.get_data(as_text=True)


# --- the lifecycle ----------------------------------------------------------------------


def test_a_status_change_gives_the_account_and_its_history_row_the_same_status_channel_and_time():
    account = Account(status=Status.CREATED, status_channel=None)

    change = accounts.status_change(account, Status.INSTALLATION_SENT, actor="gateway vonage", channel="sms")

    assert change.account_columns == {"status": Status.INSTALLATION_SENT, "status_channel": "sms",
                                      "status_changed_at": change.at}
    assert change.event_columns == {"status": Status.INSTALLATION_SENT, "channel": "sms",
                                    "actor": "gateway vonage", "created_at": change.at}


def test_the_lifecycle_stays_on_the_same_status_and_goes_back_only_to_a_resent_message():
    account = Account(status=Status.ACTIVATION_SENT, status_channel="email")

    assert accounts.status_change(account, Status.ACTIVATION_SENT, actor="x", channel="email") is None
    assert accounts.status_change(account, Status.INSTALLED, actor="x") is None
    resent = accounts.status_change(account, Status.INSTALLATION_SENT, actor="x", channel="sms", resend=True)
    assert resent.account_columns["status"] is Status.INSTALLATION_SENT
    assert accounts.status_change(account, Status.ACTIVATION_SENT, actor="x", channel="sms").channel == "sms"
