"""The account rules (services/account_rules.py): pure functions first, then the two that ask the
database, each as the console's forms and the CSV import both use it."""

import re
from types import SimpleNamespace

import pytest

from blueprints.console.forms import AccountForm
from models import AccountType
from services import account_rules
from services.account_rules import Problem
from services.errors import Conflict
from services.imports.checker import CheckedRow

MODELS = ("end-to-end", "end-to-site")


def account(**fields) -> SimpleNamespace:
    """Something with the unique fields as attributes, as an Account or a checked row has them."""
    return SimpleNamespace(**{"callerid": None, "username": None, "secondary_callerid": None,
                              "mac_address": None, **fields})


# --- the field list ------------------------------------------------------------------------------------


def test_the_account_form_has_a_field_for_every_account_field():
    with_fields = {name for name in AccountForm.__dict__ if not name.startswith("_")}
    assert set(account_rules.NAMES) <= with_fields


def test_a_checked_import_row_carries_every_account_field():
    assert sorted(CheckedRow._fields) == sorted(("row", *account_rules.NAMES))


# --- one field -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["55501234", "anna.meier", "Front_desk-2", "a+b", "o'brien", "x~(1)*!",
                                  "abc", "a" * 64])
def test_a_username_a_sip_user_part_carries_as_it_is_is_kept_as_typed(text):
    assert account_rules.parse_username(text) == text


@pytest.mark.parametrize("text", ["x", "ab", "a" * 65, "anna meier", "jörg", "a;b=1", "a/b", "a?b", "a%20b",
                                  "a@b", "a:b", "<b>", "a\x00b"])
def test_a_username_outside_the_sip_user_part_or_too_short_is_refused_saying_what_is_allowed(text):
    with pytest.raises(ValueError, match=re.escape("A username has 3 to 64 characters: letters, digits")):
        account_rules.parse_username(text)


def test_usernames_are_one_whatever_the_case_and_numbers_are_compared_as_written():
    first, second = account(username="PLAIN1"), account(username="plain1")

    assert account_rules.wanted([first]) == account_rules.wanted([second])
    assert account_rules.clashes(second, account_rules.wanted([first])) == [
        Problem("username", "plain1 is already used by another account.")]


@pytest.mark.parametrize("text", ["00:04:13:92:2d:24", "00-04-13-92-2D-24", "0004.1392.2D24", "000413922d24",
                                  " 00 04 13 92 2D 24 "])
def test_a_mac_address_in_any_usual_notation_becomes_twelve_upper_case_digits(text):
    assert account_rules.parse_mac(text) == "000413922D24"


def test_an_empty_mac_address_is_none():
    assert account_rules.parse_mac("") is None


@pytest.mark.parametrize("text", ["00:04:13", "00:04:13:92:2D:2G", "000413922D2411"])
def test_a_mac_address_without_twelve_hex_digits_is_refused_with_the_example(text):
    with pytest.raises(ValueError, match=re.escape("12 hexadecimal digits, e.g. 00:04:13:92:2D:24.")):
        account_rules.parse_mac(text)


def test_a_wizard_account_needs_a_number_with_a_leading_plus():
    assert account_rules.wizard_number_problem("+41791234567") is None
    assert account_rules.wizard_number_problem("0791234567") == Problem(
        "callerid", "Automatic activation needs an international number with a leading +.")


# --- the account's type --------------------------------------------------------------------------------


def test_a_desk_phone_has_none_of_the_softphone_settings_and_the_other_way_round():
    snom = {field.name for field in account_rules.foreign(AccountType.SNOM)}
    pgsm = {field.name for field in account_rules.foreign("pgsm")}
    assert snom == {"security_model", "obfuscation", "obfuscation_key", "keepalive"}
    assert pgsm == {"mac_address", "deny", "permit"}


def test_settling_a_desk_phone_clears_its_softphone_settings_and_keeps_the_rest():
    values = {"security_model": "end-to-end", "obfuscation": True, "obfuscation_key": "9", "keepalive": True,
              "mac_address": "000413922D24", "deny": ["0.0.0.0/0.0.0.0"], "owner": "Desk"}
    assert account_rules.settle(values, AccountType.SNOM) == {
        "security_model": None, "obfuscation": False, "obfuscation_key": "", "keepalive": False,
        "mac_address": "000413922D24", "deny": ["0.0.0.0/0.0.0.0"], "owner": "Desk"}


def test_settling_a_softphone_drops_its_mac_address_and_access_rules():
    values = {"security_model": "end-to-site", "mac_address": "000413922D24", "deny": ["0.0.0.0/0.0.0.0"]}
    assert account_rules.settle(values, "pgsm") == {
        "security_model": "end-to-site", "mac_address": None, "deny": (), "permit": ()}


def test_unset_fields_take_the_defaults_the_form_offers():
    values = {"account_type": None, "security_model": None, "obfuscation": None, "obfuscation_key": "",
              "keepalive": None, "owner": ""}
    assert account_rules.with_defaults(values, security_models=MODELS) == {
        "account_type": "pgsm", "security_model": "end-to-end", "obfuscation": True, "obfuscation_key": "9",
        "keepalive": False, "owner": ""}


def test_fields_that_are_set_keep_their_values_even_when_false():
    values = {"account_type": "snom", "security_model": "end-to-site", "obfuscation": False,
              "obfuscation_key": "7", "keepalive": True}
    assert account_rules.with_defaults(values, security_models=MODELS) == values


# --- where the account goes, and the secondary number ----------------------------------------------------


@pytest.mark.parametrize(("profile_id", "group_profile_id", "lacks"), [
    (None, None, True), (3, None, False), (None, 4, False), (3, 4, False)])
def test_a_wizard_account_lacks_a_profile_only_when_neither_it_nor_its_group_has_one(
        profile_id, group_profile_id, lacks):
    assert account_rules.lacks_profile(profile_id, group_profile_id) is lacks


def test_the_secondary_number_must_differ_from_the_primary():
    assert account_rules.secondary_problem("+41791234567", "+41791234567") == Problem(
        "secondary_callerid", "The secondary number must differ from the primary.")
    assert account_rules.secondary_problem("+41791234567", "+41797654321") is None
    assert account_rules.secondary_problem("+41791234567", None) is None


# --- uniqueness ------------------------------------------------------------------------------------------


def test_a_number_is_wanted_in_one_namespace_whether_primary_or_secondary():
    wanted = account_rules.wanted([account(callerid="+41791", username="anna", secondary_callerid="+41792"),
                                   account(callerid="+41793", mac_address="000413922D24")])
    assert wanted == {"number": {"+41791", "+41792", "+41793"}, "username": {"anna"}, "mac": {"000413922D24"}}


def test_each_unique_field_whose_value_is_taken_is_a_clash_in_its_own_field():
    taken = {"number": {"+41792"}, "username": {"anna"}, "mac": set()}
    mine = account(callerid="+41791", username="anna", secondary_callerid="+41792")
    clashes = account_rules.clashes(mine, taken)
    assert clashes == [Problem("username", "anna is already used by another account."),
                       Problem("secondary_callerid", "+41792 is already used by another account.")]


def test_taken_finds_a_number_in_either_column_and_skips_the_account_itself(app, make_account):
    mine = make_account(username="anna", callerid="+41791110001", secondary_callerid="+41791110002")
    make_account(username="bruno", callerid="+41791110003", account_type="snom", mac_address="000413922D24")
    wanted = {"number": {"+41791110002", "+41791110003", "+41791110009"}, "username": {"anna", "carla"},
              "mac": {"000413922D24"}}

    with app.app_context():
        everyone = account_rules.taken(wanted)
        others = account_rules.taken(wanted, other_than=mine)

    assert everyone == {"number": {"+41791110002", "+41791110003"}, "username": {"anna"},
                        "mac": {"000413922D24"}}
    assert others == {"number": {"+41791110003"}, "username": set(), "mac": {"000413922D24"}}


def test_taken_asks_in_chunks_and_finds_every_value(app, make_account, monkeypatch):
    monkeypatch.setattr(account_rules, "CHUNK", 2)
    for n in range(5):
        make_account(username=f"user-{n}")

    with app.app_context():
        found = account_rules.taken({"username": {f"user-{n}" for n in range(8)}})

    assert found == {"username": {f"user-{n}" for n in range(5)}}


# --- generated values ------------------------------------------------------------------------------------


def test_generated_passwords_are_long_distinct_and_of_the_alphabet():
    passwords = account_rules.new_passwords(50, length=24)
    assert len(passwords) == len(set(passwords)) == 50
    assert all(len(password) == 24 and set(password) <= set(account_rules.PASSWORD_ALPHABET)
               for password in passwords)


def test_a_generated_password_is_never_shorter_than_the_minimum():
    assert [len(password) for password in account_rules.new_passwords(2, length=8)] == [20, 20]


def test_new_usernames_skip_the_taken_and_the_avoided_ones(app, make_account, monkeypatch):
    make_account(username="10000000")
    draws = iter([0, 1, 2, 3])  # 10000000 (taken), 10000001 (avoided), then two free ones
    monkeypatch.setattr(account_rules.secrets, "randbelow", lambda _n: next(draws))

    with app.app_context():
        usernames = account_rules.new_usernames(2, length=8, avoid={"10000001"})

    assert sorted(usernames) == ["10000002", "10000003"]


def test_new_usernames_give_up_when_the_numbers_run_out(app, make_account, monkeypatch):
    make_account(username="10000000")
    monkeypatch.setattr(account_rules.secrets, "randbelow", lambda _n: 0)

    with app.app_context(), pytest.raises(Conflict, match="Could not find a free username"):
        account_rules.new_usernames(1, length=8)
