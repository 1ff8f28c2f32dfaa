"""Tenant isolation, tested as a second CSR of another group attacks it: forged idempotency keys
(another group's, the server's own `bulk-<job>-<account>`, ill-shaped ones), uniqueness messages
probed with another group's values, and the send rate limit under concurrent sends."""

import html
import io
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from extensions import db
from models import Account, Job, Message, Role
from services import accounts
from tests.support import PASSWORD, make_staff
from tests.webtools import field_errors, flashes, page_text, run_worker, sign_in

THEIR_VALUES = {"username": "bertha-gb", "callerid": "+41795550307", "secondary_callerid": "+41795550308",
                "owner": "Bertha Brandt", "email": "bertha@group-b.example", "mac_address": "000413A0B0C0"}
KEY_REFUSED = "one-time key is missing or was altered"


# --- fixtures: group A is carl's (conftest), group B is dora's --------------------------------------


@pytest.fixture
def rival(app, other_group):
    """Dora, a CSR of group B only, signed in."""
    make_staff(app, "dora", Role.CSR, [other_group])
    return sign_in(app, "dora")


@pytest.fixture
def theirs(make_account, other_group) -> int:
    """An account of group B, with values to be recognised wherever they leak."""
    names = ("username", "callerid", "secondary_callerid", "owner", "email")
    return make_account(group_id=other_group, **{name: THEIR_VALUES[name] for name in names})


@pytest.fixture
def their_phone(make_account, other_group) -> int:
    """A desk phone of group B, bound to its MAC address."""
    return make_account(group_id=other_group, account_type="snom", mac_address=THEIR_VALUES["mac_address"],
                        owner="Bertha's Phone", email="desk@group-b.example", username="bertha-desk",
                        callerid="+41795550309")


@pytest.fixture
def mine(make_account) -> int:
    """An account of group A, carl's."""
    return make_account(owner="Carla Client", email="carla@group-a.example")


# --- helpers ---------------------------------------------------------------------------------------


def send(browser, account_id: int, key: str, kind: str = "link"):
    """Press Send on the account page, by e-mail, with the form's one-time key (or a forged one)."""
    return browser.post(f"/accounts/{account_id}/send",
                        {"kind": kind, "channel": "email", "idempotency_key": key})


def resend(browser, account_id: int, message_id: int, key: str):
    return browser.post(f"/accounts/{account_id}/messages/{message_id}/resend", {"idempotency_key": key})


def bulk_send(browser, account_ids: list[int], key: str | None = None):
    """Confirm a bulk send of the secure link by e-mail to the ticked accounts."""
    return browser.post("/accounts/bulk", {
        "action": "send-link-email", "scope": "selected", "ids": [str(i) for i in account_ids], "q": "",
        "group": "", "status": "", "registered": "", "count": str(len(account_ids)), "confirmed": "1",
        "key": key or uuid.uuid4().hex})


def messages_of(app, account_id: int) -> list[tuple[int, str]]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(Message.id, Message.recipient).where(Message.account_id == account_id)
            .order_by(Message.id))]


def next_job_id(app) -> int:
    with app.app_context():
        return (db.session.scalar(select(func.max(Job.id))) or 0) + 1


def followed(browser, response):
    assert response.status_code == 302, page_text(response)
    return browser.get(response.headers["Location"])


def leaked(page: str, *, typed: str = "") -> list[str]:
    """Group B's values (and its name) that a page shows, other than the one the attacker typed."""
    text = html.unescape(page)
    return [value for value in [*THEIR_VALUES.values(), "Group B", "Bertha"]
            if value != typed and value in text.replace(typed, "")]


def account_form(group_id: int, **overrides) -> dict:
    """What the account form posts for a new plain account of carl's group."""
    return {"account_type": "pgsm", "username": "carla-new", "password": "Sip-password-1234",
            "password_repeat": "Sip-password-1234", "callerid": "+41791234567", "secondary_callerid": "",
            "group_id": str(group_id), "profile_id": "0", "owner": "Carla New",
            "email": "new@group-a.example", "description": "", "security_model": "end-to-end",
            "obfuscation": "y", "obfuscation_key": "9",
            "mac_address": "", "deny": "", "permit": "", "licence_expires_on": "", **overrides}


# --- 1. a key is bound to who sent it and what it is for -----------------------------------------


@pytest.mark.parametrize("forged", ["bulk-1-307", "import-1-307", "0123456789ABCDEF0123456789ABCDEF",
                                    "g" * 32, "0" * 31, "0" * 33, ""])
def test_a_send_with_a_key_the_server_never_hands_out_is_refused_with_a_message(
        app, csr, mail_settings, mine, forged):
    page = followed(csr, send(csr, mine, forged))

    assert messages_of(app, mine) == []
    [(category, text)] = flashes(page)
    assert category == "error" and KEY_REFUSED in text


@pytest.mark.parametrize("forged", ["bulk-1-307", "not-hex-not-hex-not-hex-not-hex!", ""])
def test_a_resend_with_a_key_the_server_never_hands_out_is_refused_with_a_message(
        app, csr, mail_settings, mine, forged):
    followed(csr, send(csr, mine, uuid.uuid4().hex))  # its flash is read, as a browser would
    [(message_id, _)] = messages_of(app, mine)

    page = followed(csr, resend(csr, mine, message_id, forged))

    assert len(messages_of(app, mine)) == 1
    [(category, text)] = flashes(page)
    assert category == "error" and KEY_REFUSED in text


def test_another_csrs_form_key_on_ones_own_account_sends_ones_own_message(
        app, csr, rival, mail_settings, mine, theirs):
    key = uuid.uuid4().hex  # dora's form key, leaked or guessed: carl posts it for his own account
    send(rival, theirs, key)

    page = followed(csr, send(csr, mine, key))

    assert [recipient for _, recipient in messages_of(app, mine)] == ["carla@group-a.example"]
    assert len(messages_of(app, theirs)) == 1
    assert flashes(page) == [("success", "Link message to carla@group-a.example queued; the status changes "
                                         "when the gateway accepts it.")]
    assert leaked(page_text(page)) == []


def test_one_form_key_posted_for_two_accounts_sends_to_each(app, csr, mail_settings, make_account):
    first, second = make_account(), make_account()
    key = uuid.uuid4().hex

    send(csr, first, key)
    send(csr, second, key)

    assert len(messages_of(app, first)) == len(messages_of(app, second)) == 1


def test_a_double_click_on_send_still_sends_once(app, csr, mail_settings, mine):
    key = uuid.uuid4().hex
    send(csr, mine, key)
    page = followed(csr, send(csr, mine, key))

    assert len(messages_of(app, mine)) == 1
    assert flashes(page)[0][0] == "success"


def test_another_csrs_bulk_confirmation_key_starts_ones_own_job(app, csr, rival, mail_settings, mine, theirs):
    key = uuid.uuid4().hex
    their_job = bulk_send(rival, [theirs], key).headers["Location"]

    started = bulk_send(csr, [mine], key)

    assert started.status_code == 302 and started.headers["Location"] != their_job
    assert csr.get(started.headers["Location"]).status_code == 200
    run_worker(app)
    assert len(messages_of(app, mine)) == len(messages_of(app, theirs)) == 1


# --- 2. another group's key shows nothing of theirs and changes nothing of theirs ------------------


def test_replaying_another_groups_bulk_key_shows_nothing_of_theirs(
    app, csr, rival, mail_settings, mine, theirs
):
    job_id = next_job_id(app)
    bulk_send(rival, [theirs])
    run_worker(app)  # dora's bulk send queued (and delivered) the link to bertha
    followed(csr, send(csr, mine, uuid.uuid4().hex))  # its flash is read, as a browser would
    [(message_id, _)] = messages_of(app, mine)

    page = followed(csr, resend(csr, mine, message_id, f"bulk-{job_id}-{theirs}"))

    assert leaked(page_text(page)) == []
    [(category, text)] = flashes(page)  # neither "queued" nor "already sent"
    assert category == "error" and KEY_REFUSED in text
    assert len(messages_of(app, theirs)) == 1


def test_a_key_planted_for_another_groups_next_bulk_send_does_not_stop_it(
        app, csr, rival, mail_settings, mine, theirs):
    followed(csr, send(csr, mine, uuid.uuid4().hex))  # its flash is read, as a browser would
    [(message_id, _)] = messages_of(app, mine)
    resend(csr, mine, message_id, f"bulk-{next_job_id(app)}-{theirs}")  # carl plants dora's next key

    progress = followed(rival, bulk_send(rival, [theirs]))
    assert progress.status_code == 200
    run_worker(app)

    assert [recipient for _, recipient in messages_of(app, theirs)] == [THEIR_VALUES["email"]]
    assert all(recipient != THEIR_VALUES["email"] for _, recipient in messages_of(app, mine))


def test_a_key_planted_for_another_groups_next_import_does_not_stop_its_sends(
        app, csr, rival, mail_settings, mine, other_group):
    with app.app_context():
        next_account = (db.session.scalar(select(func.max(Account.id))) or 0) + 1
    followed(csr, send(csr, mine, uuid.uuid4().hex))  # its flash is read, as a browser would
    [(message_id, _)] = messages_of(app, mine)
    resend(csr, mine, message_id, f"import-{next_job_id(app)}-{next_account}")

    content = (b"callerid,owner,email,group,profile\n"
               b"+41795550399,Bruno Brandt,bruno@group-b.example,Group B,Standard\n")
    upload = rival.post("/imports/", {"file": (io.BytesIO(content), "b.csv"), "group_id": str(other_group)})
    job_url = upload.headers["Location"]
    run_worker(app)  # checks the rows
    assert rival.post(f"{job_url}/confirm", {"send": "link:email"}).status_code == 302
    run_worker(app)  # writes the account, then sends its link

    with app.app_context():
        bruno = db.session.scalar(select(Account.id).where(Account.callerid == "+41795550399"))
    assert [recipient for _, recipient in messages_of(app, bruno)] == ["bruno@group-b.example"]


# --- 3. "already used by another account" names nothing of another group ------------------------------


@pytest.mark.parametrize("field, value", [
    ("username", THEIR_VALUES["username"]), ("callerid", THEIR_VALUES["callerid"]),
    ("callerid", THEIR_VALUES["secondary_callerid"]), ("secondary_callerid", THEIR_VALUES["callerid"]),
])
def test_creating_with_another_groups_value_says_taken_and_names_nothing_else_of_theirs(
        app, csr, group, theirs, field, value):
    response = csr.post("/accounts/new", account_form(group, **{field: value}))

    assert response.status_code == 200
    assert field_errors(response, field) == [f"{value} is already used by another account."]
    assert leaked(page_text(response), typed=value) == []


def test_a_desk_phone_with_another_groups_mac_says_taken_and_names_nothing_else_of_theirs(
        app, csr, group, their_phone):
    typed = "00:04:13:a0:b0:c0"
    response = csr.post("/accounts/new", account_form(group, account_type="snom", mac_address=typed))

    assert response.status_code == 200
    assert field_errors(response, "mac_address") == ["000413A0B0C0 is already used by another account."]
    assert leaked(page_text(response), typed=THEIR_VALUES["mac_address"]) == []
    assert "bertha-desk" not in page_text(response) and "+41795550309" not in page_text(response)


def test_editing_to_another_groups_username_says_taken_and_names_nothing_else_of_theirs(app, csr, mine,
                                                                                         theirs):
    typed = THEIR_VALUES["username"].upper()  # in other letters: one username all the same
    with app.app_context():
        account = db.session.get(Account, mine)
        form = account_form(account.group_id, username=typed, callerid=None, owner=account.owner,
                            email=account.email, password=None, password_repeat=None)
    form = {name: value for name, value in form.items() if value is not None and name != "account_type"}

    response = csr.post(f"/accounts/{mine}/edit", form)

    assert response.status_code == 200
    assert field_errors(response, "username") == [f"{typed} is already used by another account."]
    assert leaked(page_text(response), typed=typed) == []


def test_a_race_lost_to_another_groups_account_names_nothing_of_theirs(app, csr, group, theirs, monkeypatch):
    monkeypatch.setattr(accounts, "_check_unique", lambda account: None)  # the database's index decides
    response = csr.post("/accounts/new", account_form(group, username=THEIR_VALUES["username"]))

    assert response.status_code == 200
    assert field_errors(response, "username") == ["That value is already used by another account."]
    assert leaked(page_text(response), typed=THEIR_VALUES["username"]) == []


def test_an_import_of_another_groups_values_says_taken_and_names_nothing_else_of_theirs(
        app, csr, group, theirs, their_phone):
    content = ("callerid,username,secondary_callerid,account_type,mac_address\n"
               f"{THEIR_VALUES['secondary_callerid']},new-one,,pgsm,\n"
               f"+41791230002,{THEIR_VALUES['username']},{THEIR_VALUES['callerid']},pgsm,\n"
               f"+41791230003,new-three,,snom,{THEIR_VALUES['mac_address']}\n").encode()
    job_url = csr.post("/imports/", {"file": (io.BytesIO(content), "a.csv"), "group_id": str(group)}
                       ).headers["Location"]
    run_worker(app)

    page = page_text(csr.get(job_url))
    report = csr.get(f"{job_url}/errors.csv").get_data(as_text=True)
    for shown in (page, report):
        for value in ("secondary_callerid", "username", "callerid", "mac_address"):
            assert f"{THEIR_VALUES[value]} is already used by another account." in html.unescape(shown)
        rest = html.unescape(shown)
        for value in ("secondary_callerid", "username", "callerid", "mac_address"):
            rest = rest.replace(THEIR_VALUES[value], "")
        assert leaked(rest) == [] and "bertha-desk" not in rest and "+41795550309" not in rest


# --- 4. the send rate limit holds under concurrent sends ---------------------------------------------


def _signed_in_session(base: str, username: str) -> tuple[requests.Session, str]:
    """A browser session signed in over HTTP; return it and its form token."""
    session = requests.Session()
    login_page = session.get(f"{base}/auth/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page)
    answer = session.post(f"{base}/auth/login", data={"username": username, "password": PASSWORD,
                                                      "csrf_token": token.group(1)},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 302
    page = session.get(f"{base}/auth/password", timeout=30).text
    return session, re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def test_ten_concurrent_sends_to_one_account_create_exactly_the_limit(app, live_server, csr_id, mail_settings,
                                                                    make_account):
    app.config["SEND_RATE_LIMIT"] = 5
    account_id = make_account(wizard=True)
    browsers = [_signed_in_session(live_server, "carl") for _ in range(10)]
    start = threading.Barrier(10)

    def press_send(browser):
        session, token = browser
        start.wait(timeout=10)  # all ten leave together, each with its own form key
        return session.post(f"{live_server}/accounts/{account_id}/send", timeout=60,
                            allow_redirects=False, data={
                                "kind": "link", "channel": "email", "idempotency_key": uuid.uuid4().hex,
                                "csrf_token": token})

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(press_send, browsers))

    assert [answer.status_code for answer in answers] == [302] * 10
    assert len(messages_of(app, account_id)) == 5
    with app.app_context():  # each message carries its own link version: the newest kills the others
        versions = list(db.session.scalars(select(Message.link_version)
                                           .where(Message.account_id == account_id)))
        assert len(set(versions)) == 5
        assert db.session.get(Account, account_id).link_version == max(versions)
