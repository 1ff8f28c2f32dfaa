"""Accounts on a real SIP server: Kamailio accepts what Provisio's registrar sync says, sipp proves it.

Each test changes accounts through the services (which hand every change to the registrar themselves)
and sends real SIP requests to the session's Kamailio.
"""

import itertools
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from extensions import db
from models import Account, Status, utcnow
from services import access_rules, accounts, bulk, devices, imports, registrar, staff
from tests.webtools import detached, page_text, run_worker

from . import sipp

PASSWORD = "Sip-password-1234"  # tests/conftest.py's ACCOUNT_DEFAULTS
WRONG = (403, "Wrong username or password")
OK = (200, "OK")


def synced(app, make_account, **fields) -> Account:
    """Create an account through the service (a subscriber at once); return it detached."""
    return detached(app, Account, make_account(**fields))


def act(app, admin_id, action, account_id: int, *args) -> None:
    """Apply an account service as the admin; nothing else tells the SIP server."""
    with app.app_context():
        action(db.session.get(Account, account_id), *args, actor=staff.get(admin_id))


def password_of(app, account_id: int) -> str:
    with app.app_context():
        return accounts.sip_password(db.session.get(Account, account_id))


def test_right_password_registers_and_the_old_one_fails_after_a_rotation(app, make_account, admin_id, sip):
    account = synced(app, make_account)

    assert sipp.register(*sip, account.username, PASSWORD).final() == OK
    assert sipp.register(*sip, account.username, "not-the-password").final() == WRONG

    act(app, admin_id, accounts.rotate_password, account.id)

    assert sipp.register(*sip, account.username, PASSWORD).final() == WRONG
    assert sipp.register(*sip, account.username, password_of(app, account.id)).final() == OK


def test_disabled_account_is_refused_with_a_reason_and_loses_its_registrations(app, make_account, admin_id,
                                                                               sip):
    account = synced(app, make_account)
    assert sipp.register(*sip, account.username, PASSWORD).final() == OK
    with app.app_context():
        assert [item.username for item in registrar.registered()] == [account.username]

    act(app, admin_id, accounts.set_enabled, account.id, False)

    with app.app_context():
        assert registrar.registered() == []
    assert sipp.register(*sip, account.username, PASSWORD).final() == (403, "Account disabled")

    act(app, admin_id, accounts.set_enabled, account.id, True)

    assert sipp.register(*sip, account.username, PASSWORD).final() == OK


def test_deleted_account_is_refused(app, make_account, admin_id, sip):
    account = synced(app, make_account)
    assert sipp.register(*sip, account.username, PASSWORD).final() == OK

    act(app, admin_id, accounts.delete, account.id)

    assert sipp.register(*sip, account.username, PASSWORD).final() == WRONG
    with app.app_context():
        assert registrar.registered() == []


def test_wizard_account_is_refused_until_it_is_activated(app, make_account, sip):
    account = synced(app, make_account, wizard=True)

    assert sipp.register(*sip, account.username, password_of(app, account.id)).final() == (
        403, "Account not activated")


def test_accounts_a_csv_import_writes_are_refused_until_activated_and_edits_reach_the_server(
        app, admin_id, group, sip):
    with app.app_context():
        job = imports.start(b"username,callerid,owner\r\n55507001,+41795557001,Imported One\r\n",
                            filename="sip.csv", default_group_id=group, actor=staff.get(admin_id))
        job_id = job.id
    run_worker(app)  # checks the rows
    with app.app_context():
        actor = staff.get(admin_id)
        imports.confirm(imports.get_visible(job_id, actor), send="", actor=actor)
    run_worker(app)  # writes them
    with app.app_context():
        account_id = db.session.scalar(select(Account.id).where(Account.username == "55507001"))

    refused = sipp.register(*sip, "55507001", password_of(app, account_id)).final()
    assert refused == (403, "Account not activated")
    act(app, admin_id, accounts.set_enabled, account_id, True)
    assert sipp.register(*sip, "55507001", password_of(app, account_id)).final() == OK


def test_a_bulk_disable_refuses_every_account_at_once_and_a_bulk_enable_lets_them_back(
        app, make_account, admin_id, sip):
    first, second = synced(app, make_account), synced(app, make_account)
    assert sipp.register(*sip, first.username, PASSWORD).final() == OK

    for action, answer in (("disable", (403, "Account disabled")), ("enable", OK)):
        with app.app_context():
            bulk.start(staff.get(admin_id), action, [first.id, second.id], key=uuid.uuid4().hex, scope={})
        run_worker(app)
        assert [sipp.register(*sip, account.username, PASSWORD).final() for account in (first, second)] == [
            answer, answer]
        if action == "disable":
            with app.app_context():
                assert registrar.registered() == []  # the disable ended the registration too


def test_the_console_lists_what_the_sip_server_registered_and_filters_on_it(app, make_account, admin, sip):
    online, offline = synced(app, make_account, owner="Online Owner"), synced(app, make_account)
    registered = sipp.register(*sip, online.username, PASSWORD, source="127.0.0.3", user_agent="Phone/3.1")
    assert registered.final() == OK

    page = page_text(admin.get("/clients"))
    listed = page_text(admin.get("/accounts?registered=y"))

    assert "Registrations the SIP server holds now" in page
    assert online.username in page and "Phone/3.1" in page and "127.0.0.3:" in page
    assert offline.username not in page
    assert f">{online.username}</a>" in listed and f">{offline.username}</a>" not in listed


def test_registered_shows_a_registration_at_once_and_forgets_it_when_it_expires(app, make_account, sip):
    account = synced(app, make_account)

    reply = sipp.register(*sip, account.username, PASSWORD, source="127.0.0.2", expires=2,
                          user_agent="Test/1.0")

    assert reply.final() == OK
    with app.app_context():
        [registration] = registrar.registered()
    assert registration.username == account.username
    assert registration.source == f"127.0.0.2:{reply.port}"
    assert registration.contact == f"sip:{account.username}@127.0.0.2:{reply.port}"
    assert registration.user_agent == "Test/1.0"
    assert utcnow() < registration.expires <= utcnow() + timedelta(seconds=3)
    deadline = time.monotonic() + 5
    with app.app_context():
        while registrar.registered():
            assert time.monotonic() < deadline, "the registration outlived its expiry"
            time.sleep(0.1)


def test_ended_registrations_disappear_at_once(app, make_account, sip):
    account = synced(app, make_account, username="55500001")  # numeric, as wizard accounts' are
    assert sipp.register(*sip, account.username, PASSWORD).final() == OK

    with app.app_context():
        registrar.end_registrations(account.username)

        assert registrar.registered() == []


@pytest.mark.parametrize(("deny", "permit", "allowed"), [
    # The manual's example: deny every address, permit one.
    (["0.0.0.0/0.0.0.0"], ["127.0.0.3/255.255.255.255"], {"127.0.0.2": False, "127.0.0.3": True}),
    (["127.0.0.0/255.255.255.0"], [], {"127.0.0.2": False, "127.0.0.3": False}),
    (["127.0.0.2/255.255.255.255"], [], {"127.0.0.2": False, "127.0.0.3": True}),
    ([], ["127.0.0.2/255.255.255.255"], {"127.0.0.2": True, "127.0.0.3": True}),  # neither: allowed
])
def test_snom_rules_decide_which_addresses_may_register(app, make_account, sip, deny, permit, allowed):
    account = synced(app, make_account, account_type="snom", security_model=None, deny=deny, permit=permit)

    seen = {source: sipp.register(*sip, account.username, PASSWORD, source=source).final()
            for source in allowed}

    assert seen == {source: OK if ok else (403, "Source address not permitted")
                    for source, ok in allowed.items()}
    # The SIP server applies the rule the settings download applies.
    assert {source: access_rules.is_allowed(source, deny, permit) for source in allowed} == allowed


def test_connected_follows_the_registration(app, make_account, admin_id, sip):
    account = synced(app, make_account)
    with app.app_context():
        assert devices.mark_registered_connected() == 0
    assert sipp.register(*sip, account.username, PASSWORD, user_agent="Test/1.0").final() == OK

    with app.app_context():
        assert devices.mark_registered_connected() == 1
        assert db.session.get(Account, account.id).status is Status.CONNECTED
        [client] = devices.registered_clients(staff.get(admin_id), 60)
    assert client.account.username == account.username and client.user_agent == "Test/1.0"


def test_a_call_to_the_primary_or_secondary_number_rings_the_account(app, make_account, sip):
    caller = synced(app, make_account)
    callee = synced(app, make_account, secondary_callerid="+41799990001")

    with sipp.client(*sip, callee.username, PASSWORD) as phone:
        calls = [sipp.call(*sip, caller.username, PASSWORD, number)
                 for number in (callee.callerid, callee.secondary_callerid)]
        rang = phone.received("INVITE")

    assert [call.final("INVITE") for call in calls] == [OK, OK]
    assert [call.final("BYE") for call in calls] == [OK, OK]
    assert len(rang) == 2
    # The callee sees the caller's virtual number, whatever the caller's client says.
    assert {invite.headers["p-asserted-identity"] for invite in rang} == {
        f"<sip:{caller.callerid}@{sip[0].split(':')[0]}>"}


def test_a_disabled_account_can_neither_call_nor_be_called(app, make_account, admin_id, sip):
    caller = synced(app, make_account)
    callee = synced(app, make_account)

    with sipp.client(*sip, callee.username, PASSWORD) as phone:
        act(app, admin_id, accounts.set_enabled, caller.id, False)
        refused_caller = sipp.call(*sip, caller.username, PASSWORD, callee.callerid)
        act(app, admin_id, accounts.set_enabled, caller.id, True)
        act(app, admin_id, accounts.set_enabled, callee.id, False)
        refused_callee = sipp.call(*sip, caller.username, PASSWORD, callee.callerid)
        rang = phone.received("INVITE")

    assert refused_caller.final("INVITE") == (403, "Account disabled")
    assert refused_callee.final("INVITE") == (403, "Called account is disabled")
    assert rang == []


def test_calls_to_unknown_or_unregistered_numbers_are_refused(app, make_account, sip):
    caller = synced(app, make_account)
    offline = synced(app, make_account)

    unknown = sipp.call(*sip, caller.username, PASSWORD, "+41790000000")
    unregistered = sipp.call(*sip, caller.username, PASSWORD, offline.callerid)

    assert unknown.final("INVITE") == (404, "Unknown number")
    assert unregistered.final("INVITE") == (480, "Not registered")


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_keepalive_requests_arrive_at_the_interval_for_keepalive_accounts_only(app, make_account, sip, tcp):
    interval = app.config["KEEPALIVE_INTERVAL"]
    pinged = synced(app, make_account, keepalive=True)
    quiet = synced(app, make_account, keepalive=False)

    with (sipp.client(*sip, pinged.username, PASSWORD, answer=False, tcp=tcp) as pinged_phone,
          sipp.client(*sip, quiet.username, PASSWORD, answer=False, tcp=tcp) as quiet_phone):
        deadline = time.monotonic() + 4 * interval + 2
        while len(pinged_phone.received("OPTIONS")) < 3:
            assert time.monotonic() < deadline, "fewer keep-alive requests than the interval promises"
            time.sleep(0.05)
        options = pinged_phone.received("OPTIONS")
        quiet_options = quiet_phone.received("OPTIONS")

    gaps = [(later.at - earlier.at).total_seconds() for earlier, later in itertools.pairwise(options)]
    assert all(abs(gap - interval) < 0.3 for gap in gaps), gaps
    assert quiet_options == []


def test_a_client_on_tcp_registers_and_is_called_on_its_connection(app, make_account, sip):
    caller = synced(app, make_account)
    callee = synced(app, make_account)

    with sipp.client(*sip, callee.username, PASSWORD, tcp=True) as phone:
        with app.app_context():
            [registration] = registrar.registered()
        call = sipp.call(*sip, caller.username, PASSWORD, callee.callerid)
        received = [message.method for message in phone.messages() if message.received]

    assert registration.source == f"127.0.0.1:{phone.port}"
    assert (call.final("INVITE"), call.final("BYE")) == (OK, OK)
    # The whole dialog reached the callee on its connection, though its Contact names no transport.
    assert [method for method in received if method in ("INVITE", "ACK", "BYE")] == ["INVITE", "ACK", "BYE"]
