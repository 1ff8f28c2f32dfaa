"""SNOM access rules: the deny-then-permit decision and the rule parser (pure functions)."""

import pytest

from services.access_rules import is_allowed, normalise_rule

# The manual's example: refuse everything, then let exactly one address through.
DENY_ALL = ["0.0.0.0/0.0.0.0"]
PERMIT_ONE = ["216.27.242.66/255.255.255.255"]


def test_manual_example_allows_the_permitted_address_although_deny_all_matches():
    assert is_allowed("216.27.242.66", DENY_ALL, PERMIT_ONE) is True


@pytest.mark.parametrize("address", ["216.27.242.65", "216.27.242.67", "10.0.0.1", "8.8.8.8",
                                     "0.0.0.0", "255.255.255.255"])
def test_manual_example_refuses_every_other_address(address):
    assert is_allowed(address, DENY_ALL, PERMIT_ONE) is False


def test_deny_only_refuses_addresses_inside_the_denied_network():
    assert is_allowed("10.20.30.40", ["10.0.0.0/255.0.0.0"], []) is False


def test_deny_only_allows_addresses_outside_the_denied_network():
    assert is_allowed("192.168.1.10", ["10.0.0.0/255.0.0.0"], []) is True


def test_address_matched_by_neither_deny_nor_permit_is_allowed():
    assert is_allowed("192.168.1.10", ["10.0.0.0/255.0.0.0"], ["172.16.0.0/255.240.0.0"]) is True


def test_no_rules_at_all_allow_every_address():
    assert is_allowed("203.0.113.9", [], []) is True


def test_permit_network_wins_over_deny_for_its_whole_range():
    deny, permit = DENY_ALL, ["192.168.1.0/255.255.255.0"]
    assert is_allowed("192.168.1.200", deny, permit) is True
    assert is_allowed("192.168.2.1", deny, permit) is False


def test_is_allowed_accepts_rules_written_as_cidr():
    assert is_allowed("216.27.242.66", ["0.0.0.0/0"], ["216.27.242.66/32"]) is True
    assert is_allowed("216.27.242.67", ["0.0.0.0/0"], ["216.27.242.66/32"]) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0/0.0.0.0", "0.0.0.0/0.0.0.0"),
        ("216.27.242.66/255.255.255.255", "216.27.242.66/255.255.255.255"),
        ("10.0.0.0/8", "10.0.0.0/255.0.0.0"),
        ("0.0.0.0/0", "0.0.0.0/0.0.0.0"),
        ("216.27.242.66/32", "216.27.242.66/255.255.255.255"),
        ("192.168.1.77/24", "192.168.1.0/255.255.255.0"),
        ("  172.16.5.4/255.240.0.0  ", "172.16.0.0/255.240.0.0"),
    ],
)
def test_normalise_rule_returns_network_and_dotted_netmask(text, expected):
    assert normalise_rule(text) == expected


def test_normalised_rules_decide_like_the_originals():
    deny = [normalise_rule("0.0.0.0/0")]
    permit = [normalise_rule("216.27.242.66/32")]
    assert is_allowed("216.27.242.66", deny, permit) is True
    assert is_allowed("216.27.242.99", deny, permit) is False


@pytest.mark.parametrize(
    "text",
    ["216.27.242.66", "not a rule", "300.1.1.1/255.0.0.0", "10.0.0.0/255.0.255.0", "10.0.0.0/33",
     "10.0.0.0/", "/255.255.255.0", "2001:db8::/32"],
)
def test_bad_rule_raises_a_readable_value_error_naming_the_rule(text):
    with pytest.raises(ValueError) as caught:
        normalise_rule(text)
    message = str(caught.value)
    assert text.strip() in message
    # Readable: it says what shape is expected instead of echoing ipaddress internals.
    assert "<ip address>/<netmask>" in message
    assert "does not appear to be" not in message


@pytest.mark.parametrize("address", ["2001:db8::1", "::1", "::ffff:10.0.0.1"])
def test_deny_all_refuses_ipv6_clients_and_mapped_ipv4_alike(address):
    assert is_allowed(address, DENY_ALL, PERMIT_ONE) is False


def test_a_mapped_ipv4_client_is_matched_as_its_ipv4_address():
    assert is_allowed("::ffff:216.27.242.66", DENY_ALL, PERMIT_ONE) is True
    assert is_allowed("::ffff:10.20.30.40", ["10.0.0.0/255.0.0.0"], []) is False


def test_an_ipv6_client_matched_by_no_rule_of_its_family_is_allowed():
    assert is_allowed("2001:db8::1", ["10.0.0.0/255.0.0.0"], []) is True  # neither matched: allowed
