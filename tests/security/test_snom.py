"""Snom desk-phone settings as an attacker probes them: MAC walks, forged User-Agents, guessed
secrets from one address, concurrent phones, another group's CSR (ISSUE-13 §1, SPEC §4.1)."""

import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select, text

from extensions import db
from models import Account, AuditEvent, Status
from services import settings, snom
from tests.support import Client, make_staff
from tests.webtools import issue_link

MAC = "000413AE765E"
UA = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 1.1.5-IS {mac})"
PHONE_UA = UA.format(mac=MAC)
PUBLIC = "https://activate.example.test"
# The manual's example (tests/test_access_rules.py): refuse everyone, then let one address through.
DENY_ALL, PERMIT_ONE = ["0.0.0.0/0.0.0.0"], ["216.27.242.66/255.255.255.255"]


@pytest.fixture
def phone_account(make_account) -> int:
    return make_account(account_type="snom", mac_address=MAC, security_model=None)


def make_secret(app, account_id: int) -> str:
    with app.app_context():
        return snom.rotate_secret(db.session.get(Account, account_id), actor="test")


def fetch(app, path: str, *, ip: str = "198.51.100.7", user_agent: str = PHONE_UA, method: str = "GET"):
    return app.test_client().open(path, method=method, headers={"User-Agent": user_agent},
                                  environ_base={"REMOTE_ADDR": ip})


def fetch_events(app, outcome: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.action == "snom.fetch").order_by(AuditEvent.id)
        if outcome:
            query = query.where(AuditEvent.outcome == outcome)
        events = list(db.session.scalars(query))
        db.session.expunge_all()
        return events


def account_of(app, account_id: int) -> Account:
    with app.app_context():
        account = db.session.get(Account, account_id)
        db.session.expunge(account)
        return account


def answer(response) -> tuple[int, bytes, str | None]:
    return response.status_code, response.data, response.mimetype


# --- 1. A secret in the URL, and nothing for a MAC alone ---------------------------------------


def test_snom_settings_need_the_phone_secret(app, phone_account):
    """The probe of the issue: the MAC-only URL with the phone's own User-Agent."""
    known = fetch(app, f"/snom/{MAC}.xml")
    unknown = fetch(app, "/snom/000413AE765F.xml", user_agent=UA.format(mac="000413AE765F"))

    assert known.status_code == 404
    assert b"user_pass" not in known.data
    assert answer(known) == answer(unknown)  # nothing tells a bound MAC from an unknown one


def test_snom_settings_are_served_at_the_secret_url(app, phone_account):
    secret = make_secret(app, phone_account)

    response = fetch(app, f"/snom/{secret}/{MAC}.xml")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert b"<user_pass" in response.data and b"Sip-password-1234" in response.data


def test_every_miss_of_the_secret_url_gets_the_same_404(app, phone_account, make_account):
    secret = make_secret(app, phone_account)
    other_secret = make_secret(app, make_account(account_type="snom", mac_address="000413AE7660",
                                                 security_model=None))
    other = "000413AE7661"
    misses = {
        "wrong secret": fetch(app, f"/snom/{'A' * 32}/{MAC}.xml"),
        "truncated secret": fetch(app, f"/snom/{secret[:-1]}/{MAC}.xml"),
        "another account's secret": fetch(app, f"/snom/{other_secret}/{MAC}.xml"),
        "another phone, own MAC in URL and UA": fetch(app, f"/snom/{secret}/{other}.xml",
                                                      user_agent=UA.format(mac=other)),
        "URL MAC is not the User-Agent's": fetch(app, f"/snom/{secret}/{MAC}.xml",
                                                 user_agent=UA.format(mac=other)),
        "a browser": fetch(app, f"/snom/{secret}/{MAC}.xml", user_agent="Mozilla/5.0 (X11; Linux x86_64)"),
        "curl": fetch(app, f"/snom/{secret}/{MAC}.xml", user_agent="curl/8.5.0"),
        "not a MAC": fetch(app, f"/snom/{secret}/zz0413AE765E.xml"),
    }

    first = answer(misses["wrong secret"])
    assert first[0] == 404
    for name, response in misses.items():
        assert answer(response) == first, name
        assert "Retry-After" not in response.headers, name
    assert fetch(app, f"/snom/{secret}/{MAC}.xml").status_code == 200  # and the right one works


def test_the_settings_secret_is_random_and_stored_only_as_a_hash(app, phone_account):
    made = [make_secret(app, phone_account) for _ in range(3)]

    assert len(set(made)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", secret) for secret in made)  # 192 random bits each
    with app.app_context(), db.engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT * FROM accounts")).all())
        dump += repr(connection.execute(text("SELECT * FROM audit_events")).all())
    assert not [secret for secret in made if secret in dump]
    account = account_of(app, phone_account)
    assert account.snom_secret_hash == hashlib.sha256(made[-1].encode()).hexdigest()
    assert account.snom_secret_set_at is not None


# --- 2. Rotation from the account page --------------------------------------------------------


def rotate(client: Client, account_id: int, **kwargs):
    return client.post(f"/accounts/{account_id}/snom-url", **kwargs)


def secret_in(page: str) -> str:
    return re.search(r"/snom/([A-Za-z0-9_-]{32})/\{mac\}\.xml", page).group(1)


def test_a_csr_rotates_the_settings_url_and_the_old_one_dies(app, csr, phone_account):
    old = make_secret(app, phone_account)

    response = rotate(csr, phone_account)

    assert response.status_code == 200
    new = secret_in(response.get_data(as_text=True))
    assert new != old
    assert fetch(app, f"/snom/{old}/{MAC}.xml").status_code == 404
    assert fetch(app, f"/snom/{new}/{MAC}.xml").status_code == 200
    with app.app_context():
        event_ = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "snom.rotate_secret",
                                                            AuditEvent.actor == "carl"))
        assert (event_.target_id, event_.detail["replaced"]) == (phone_account, True)


def test_the_new_url_is_shown_once_from_the_public_base_url_on_a_no_store_page(app, csr_id, phone_account):
    with app.app_context():
        settings.save({"public_base_url": PUBLIC}, actor="test")
    csr = Client(app)
    csr.http.environ_base["HTTP_HOST"] = "evil.example"  # a forged Host on every request
    csr.login("carl")

    response = rotate(csr, phone_account)

    page = response.get_data(as_text=True)
    secret = secret_in(page)
    assert f'value="{PUBLIC}/snom/{secret}/{{mac}}.xml"' in page  # never the request's Host
    assert "evil.example" not in page
    assert "no-store" in response.headers["Cache-Control"]
    assert "<script>" not in page and 'src="/static/js/copy.js"' in page  # CSP script-src 'self'
    assert 'data-copy="#snom-url"' in page
    detail = csr.get(f"/accounts/{phone_account}").get_data(as_text=True)
    assert secret not in detail  # not in a flash either: the session cookie is only signed
    assert "Rotate settings URL" in detail and "Set <time" in detail


def test_rotation_needs_the_form_token(app, csr, phone_account):
    secret = make_secret(app, phone_account)

    assert rotate(csr, phone_account, csrf=False).status_code == 400
    assert fetch(app, f"/snom/{secret}/{MAC}.xml").status_code == 200


def test_only_a_writer_of_the_accounts_group_can_rotate(app, csr, viewer, other_group, phone_account):
    make_staff(app, "olga", "csr", [other_group])
    outsider = Client(app)
    outsider.login("olga")
    secret = make_secret(app, phone_account)

    assert rotate(outsider, phone_account).status_code == 404  # another group's account does not exist
    assert rotate(viewer, phone_account).status_code == 403
    assert fetch(app, f"/snom/{secret}/{MAC}.xml").status_code == 200  # neither changed anything
    assert rotate(csr, phone_account).status_code == 200


def test_a_softphone_account_gets_no_settings_url(app, csr, make_account):
    account_id = make_account()

    response = rotate(csr, account_id, follow_redirects=True)

    assert "Only SNOM desk phones have a settings URL." in response.get_data(as_text=True)
    assert account_of(app, account_id).snom_secret_hash is None


# --- 3. MACs: any case, the phone's own, bound at first fetch ----------------------------------


@pytest.mark.parametrize(("url_mac", "ua_mac"),
                         [(MAC.lower(), MAC), (MAC, MAC.lower()), (MAC.lower(), MAC.lower())])
def test_macs_match_in_any_letter_case(app, phone_account, url_mac, ua_mac):
    secret = make_secret(app, phone_account)

    assert fetch(app, f"/snom/{secret}/{url_mac}.xml", user_agent=UA.format(mac=ua_mac)).status_code == 200


def test_an_account_without_a_mac_binds_the_first_phone_that_fetches_with_the_secret(app, make_account):
    account_id = make_account(account_type="snom", security_model=None)
    secret = make_secret(app, account_id)

    assert fetch(app, f"/snom/{secret}/{MAC.lower()}.xml").status_code == 200
    assert account_of(app, account_id).mac_address == MAC
    other = "000413AE7661"
    assert fetch(app, f"/snom/{secret}/{other}.xml", user_agent=UA.format(mac=other)).status_code == 404
    assert account_of(app, account_id).mac_address == MAC
    with app.app_context():
        bound = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "snom.bind_mac"))
        assert bound.detail == {"mac": MAC}


def test_a_mac_bound_to_another_account_is_not_bound_twice(app, make_account, phone_account):
    account_id = make_account(account_type="snom", security_model=None)
    secret = make_secret(app, account_id)

    response = fetch(app, f"/snom/{secret}/{MAC}.xml")

    assert response.status_code == 409 and response.get_json()["error"] == "mac_in_use"
    assert account_of(app, account_id).mac_address is None


def test_two_phones_racing_for_one_unbound_secret_bind_one(app, live_server, make_account):
    account_id = make_account(account_type="snom", security_model=None)
    secret = make_secret(app, account_id)
    macs = [f"000413AE7{n:03X}" for n in range(8)]
    start = threading.Barrier(len(macs))

    def one(mac: str) -> tuple[str, int]:
        start.wait()
        return mac, requests.get(f"{live_server}/snom/{secret}/{mac}.xml",
                                 headers={"User-Agent": UA.format(mac=mac)}, timeout=30).status_code

    with ThreadPoolExecutor(len(macs)) as pool:
        results = dict(pool.map(one, macs))

    served = [mac for mac, status in results.items() if status == 200]
    assert len(served) == 1, results
    assert set(results.values()) - {200} <= {403, 404}
    assert account_of(app, account_id).mac_address == served[0]


# --- 4. Audit and the count of failures --------------------------------------------------------


def test_every_settings_fetch_writes_one_audit_row(app, make_account):
    account_id = make_account(account_type="snom", mac_address=MAC, security_model=None,
                              deny=["10.0.0.0/255.0.0.0"])
    secret = make_secret(app, account_id)

    fetch(app, f"/snom/{secret}/{MAC}.xml", ip="198.51.100.7")
    fetch(app, f"/snom/{secret}/{MAC}.xml", ip="10.1.2.3")

    ok, refused = fetch_events(app)
    assert (ok.actor, ok.target_id, ok.ip, ok.outcome) == ("phone", account_id, "198.51.100.7", "ok")
    assert ok.detail["user_agent"] == PHONE_UA
    assert (refused.target_id, refused.ip, refused.outcome) == (account_id, "10.1.2.3", "refused")
    assert refused.detail["reason"] == "address_refused" and refused.detail["user_agent"] == PHONE_UA


def test_guesses_are_counted_then_refused_with_429_and_audited_once_while_right_urls_still_work(
    app, phone_account
):
    app.config.update(SNOM_GUESS_LIMIT=5, SNOM_GUESS_WINDOW_SECONDS=600)
    secret = make_secret(app, phone_account)
    attacker = "203.0.113.66"

    guesses = [fetch(app, f"/snom/{'B' * 31}{n}/{MAC}.xml", ip=attacker).status_code for n in range(5)]
    assert guesses == [404] * 5
    assert fetch_events(app) == []  # counted, not one row each

    crossing = fetch(app, f"/snom/{'C' * 32}/{MAC}.xml", ip=attacker)
    assert crossing.status_code == 429 and crossing.get_json()["error"] == "throttled"
    assert crossing.headers["Retry-After"] == "600"
    # A phone behind the same address (an office's NAT) keeps its settings: only misses are refused.
    assert fetch(app, f"/snom/{secret}/{MAC}.xml", ip=attacker).status_code == 200

    [throttled] = fetch_events(app, "throttled")
    assert (throttled.outcome, throttled.ip, throttled.target_id) == ("throttled", attacker, None)
    # Others are still served.
    assert fetch(app, f"/snom/{secret}/{MAC}.xml", ip="198.51.100.7").status_code == 200


def test_concurrent_guesses_from_one_address_get_exactly_the_limit_of_answers(
    app, live_server, phone_account
):
    app.config.update(SNOM_GUESS_LIMIT=10)

    def guess(n: int) -> int:
        return requests.get(f"{live_server}/snom/{n:032d}/{MAC}.xml", headers={"User-Agent": PHONE_UA},
                            timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(guess, range(30)))

    assert sorted(statuses) == [404] * 10 + [429] * 20
    assert [e.outcome for e in fetch_events(app)] == ["throttled"]


def test_refused_fetches_count_too_so_a_denied_network_cannot_flood_the_audit_log(app, make_account):
    app.config.update(SNOM_GUESS_LIMIT=3)
    account_id = make_account(account_type="snom", mac_address=MAC, security_model=None,
                              deny=DENY_ALL, permit=PERMIT_ONE)
    secret = make_secret(app, account_id)

    statuses = [fetch(app, f"/snom/{secret}/{MAC}.xml", ip="192.0.2.9").status_code for _ in range(10)]

    assert statuses == [403] * 3 + [429] * 7
    assert [e.outcome for e in fetch_events(app)] == ["refused"] * 3 + ["throttled"]


def test_one_ipv6_host_cannot_multiply_its_guesses_across_its_64(app, phone_account):
    app.config.update(SNOM_GUESS_LIMIT=3)
    statuses = [fetch(app, f"/snom/{n:032d}/{MAC}.xml", ip=f"2001:db8:1:2::{n + 1:x}").status_code
                for n in range(5)]

    assert statuses == [404] * 3 + [429] * 2
    assert fetch(app, f"/snom/{0:032d}/{MAC}.xml", ip="2001:db8:1:3::1").status_code == 404  # another /64


def test_first_boot_fetches_are_audited_and_dead_links_counted(app, make_account):
    app.config.update(SNOM_GUESS_LIMIT=2)
    account_id = make_account(account_type="snom", security_model=None)
    token = issue_link(app, account_id)

    assert fetch(app, f"/snom/first/{token}.xml").status_code == 200
    forged = [fetch(app, "/snom/first/forged.xml", ip="203.0.113.5").status_code for _ in range(3)]
    assert forged == [410, 410, 429]

    ok, throttled = fetch_events(app)
    assert (ok.outcome, ok.target_id, ok.detail["via"]) == ("ok", account_id, "first_boot")
    assert (throttled.outcome, throttled.ip) == ("throttled", "203.0.113.5")


def test_head_fetches_nothing_and_changes_nothing(app, phone_account):
    secret = make_secret(app, phone_account)

    response = fetch(app, f"/snom/{secret}/{MAC}.xml", method="HEAD")

    assert response.status_code == 405 and response.headers["Allow"] == "GET"
    assert account_of(app, phone_account).status is Status.CREATED
    assert fetch_events(app) == []


# --- 5. Deny/permit rules, deny first ----------------------------------------------------------


@pytest.mark.parametrize(("ip", "status"), [
    ("216.27.242.66", 200), ("216.27.242.67", 403), ("10.0.0.1", 403),
    # The rules are IPv4: an IPv6 client is no way around "deny all", nor the IPv4 it maps.
    ("2001:db8::1", 403), ("::ffff:10.0.0.1", 403), ("::ffff:216.27.242.66", 200),
])
def test_the_manuals_deny_all_permit_one_example_holds_at_the_secret_url(app, make_account, ip, status):
    account_id = make_account(account_type="snom", mac_address=MAC, security_model=None,
                              deny=DENY_ALL, permit=PERMIT_ONE)
    secret = make_secret(app, account_id)

    response = fetch(app, f"/snom/{secret}/{MAC}.xml", ip=ip)

    assert response.status_code == status
    assert (b"<user_pass" in response.data) is (status == 200)
    assert (account_of(app, account_id).status is Status.ACTIVATED) is (status == 200)


def test_a_first_boot_link_serves_the_settings_once(app, make_account):
    account_id = make_account(account_type="snom", security_model=None)
    path = f"/snom/first/{issue_link(app, account_id)}.xml"

    assert fetch(app, path).status_code == 200
    replay = fetch(app, path, ip="203.0.113.80")  # the phone's MAC is on its label: a replay carries it

    assert replay.status_code == 410 and b"<user_pass" not in replay.data


def test_rotating_the_settings_url_kills_a_first_boot_link_sent_before(app, make_account):
    account_id = make_account(account_type="snom", security_model=None)
    path = f"/snom/first/{issue_link(app, account_id)}.xml"
    make_secret(app, account_id)

    response = fetch(app, path)

    assert response.status_code == 410 and b"<user_pass" not in response.data
