"""services/registrar without a SIP server: the rows every write path leaves, the rules it translates,
the commands, and Connected and "Registered clients" from the registrations Kamailio writes.

tests/sip/ runs the same code against a real Kamailio and sipp.
"""

import hashlib
import ipaddress
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from app import create_app
from config import ConfigError
from extensions import db
from models import Account, Status, utcnow
from models.registrar import location, numbers, subscriber
from services import access_rules, accounts, backup, devices, registrar, staff
from tests.support import make_config
from tests.webtools import detached, run_worker

REALM = "provisio.test"


def with_registrar(app, folder):
    """Point the app at a registrar database of two SQLite files; no Kamailio."""
    app.config.update(REGISTRAR_DATABASE_URL=f"sqlite:///{folder / 'registrar.db'}",
                      REGISTRAR_LOCATION_URL=f"sqlite:///{folder / 'registrar-location.db'}",
                      REGISTRAR_REALM=REALM)
    return app


@pytest.fixture
def sip_app(app, tmp_path):
    """The test app with its registrar's tables made."""
    with with_registrar(app, tmp_path).app_context():
        registrar.init_schema()
    return app


def rows(app, table) -> list[dict]:
    setting = "REGISTRAR_LOCATION_URL" if table is location else "REGISTRAR_DATABASE_URL"
    engine = create_engine(app.config[setting])
    with engine.connect() as connection:
        found = [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]
    engine.dispose()
    return found


def register_row(app, username: str, *, expires_in: float = 60, received: str | None = "sip:192.0.2.7:5061"):
    """A registration row as Kamailio writes it on SQLite: times are Julian days."""
    now = utcnow().timestamp() / 86400 + 2440587.5
    with sqlite3.connect(app.config["REGISTRAR_LOCATION_URL"].removeprefix("sqlite:///")) as connection:
        connection.execute(
            "INSERT INTO sip_location (ruid, username, contact, received, expires, last_modified, "
            "user_agent) VALUES (?, ?, ?, ?, ?, ?, 'Phone/1.0')",
            (f"uloc-{username}-{expires_in}", username, f"sip:{username}@10.0.0.7:5060", received,
             now + expires_in / 86400, now))


def act(app, admin_id, action, account_id: int, *args) -> None:
    with app.app_context():
        action(db.session.get(Account, account_id), *args, actor=staff.get(admin_id))


def test_without_a_registrar_nothing_is_written_or_read(app, make_account):
    account_id = make_account()

    with app.app_context():
        assert registrar.configured() is False
        assert registrar.sync([account_id]) and registrar.sync()
        assert registrar.registered() == []
        assert devices.mark_registered_connected() == 0


def test_a_new_account_is_a_subscriber_at_once_with_hashes_and_numbers_never_the_password(sip_app,
                                                                                            make_account):
    account_id = make_account(secondary_callerid="+41799990001", keepalive=True)

    account = detached(sip_app, Account, account_id)
    [row] = rows(sip_app, subscriber)
    password = "Sip-password-1234"
    assert row["ha1"] == hashlib.md5(f"{account.username}:{REALM}:{password}".encode()).hexdigest()
    assert row["ha1b"] == hashlib.md5(f"{account.username}@{REALM}:{REALM}:{password}".encode()).hexdigest()
    assert password not in str(row)
    assert (row["account_id"], row["username"], row["enabled"], row["refusal"], row["keepalive"]) == (
        account_id, account.username, 1, "", 1)
    assert [(item["number"], item["username"], item["domain"]) for item in rows(sip_app, numbers)] == [
        (account.callerid, account.username, REALM), ("+41799990001", account.username, REALM)]


@pytest.mark.parametrize(("wizard", "disable", "reason"), [
    (False, False, None),
    (False, True, "Account disabled"),
    (True, False, "Account not activated"),
    (True, True, "Account disabled"),
])
def test_refusal_says_why_an_account_may_not_register(sip_app, make_account, admin_id, wizard, disable,
                                                       reason):
    account_id = make_account(wizard=wizard)
    if disable:
        act(sip_app, admin_id, accounts.set_enabled, account_id, False)

    assert registrar.refusal(detached(sip_app, Account, account_id)) == reason
    [row] = rows(sip_app, subscriber)
    assert (row["enabled"], row["refusal"]) == (int(reason is None), reason or "")


def test_snom_rules_reach_the_registrar_as_cidr_lists(sip_app, make_account):
    make_account(account_type="snom", security_model=None, keepalive=True,
                 deny=["0.0.0.0/0.0.0.0", "10.1.0.0/255.255.0.0"], permit=["216.27.242.66/255.255.255.255"])

    [row] = rows(sip_app, subscriber)
    assert (row["deny"], row["permit"], row["keepalive"]) == (
        "0.0.0.0/0,::/0,10.1.0.0/16,::ffff:10.1.0.0/112", "216.27.242.66/32,::ffff:216.27.242.66/128", 0)


NETWORKS = st.builds(lambda address, prefix: str(ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)),
                     st.ip_addresses(v=4), st.integers(0, 32))
RULES = st.lists(NETWORKS, max_size=3)


@given(address=st.ip_addresses(v=4) | st.ip_addresses(v=6), deny=RULES, permit=RULES)
def test_the_cidr_lists_decide_as_is_allowed_does(address, deny, permit):
    # What kamailio.cfg's SOURCE_RULES does with the lists (ipops' is_in_subnet matches an address with
    # the networks of its own family): permit first, then deny, else let in.
    def listed(rules):
        return any(address in ipaddress.ip_network(cidr) for cidr in access_rules.as_cidrs(rules)
                   if ipaddress.ip_network(cidr).version == address.version)

    by_the_registrar = listed(permit) or not listed(deny)

    assert by_the_registrar == access_rules.is_allowed(str(address), deny, permit)


def test_a_renamed_disabled_or_deleted_account_loses_its_registrations(sip_app, make_account, admin_id,
                                                                       monkeypatch):
    ended = []
    monkeypatch.setattr(registrar, "end_registrations", ended.append)
    renamed, disabled, deleted, kept = (make_account() for _ in range(4))
    names = {account_id: detached(sip_app, Account, account_id).username
             for account_id in (renamed, disabled, deleted, kept)}
    for username in names.values():
        register_row(sip_app, username)

    with sip_app.app_context():
        account = db.session.get(Account, renamed)
        accounts.update_account(account, {"username": "renamed01", "group_id": account.group_id},
                                actor=staff.get(admin_id))
    act(sip_app, admin_id, accounts.set_enabled, disabled, False)
    act(sip_app, admin_id, accounts.delete, deleted)

    assert sorted(ended) == sorted([names[renamed], names[disabled], names[deleted]])
    assert {row["account_id"]: row["username"] for row in rows(sip_app, subscriber)} == {
        renamed: "renamed01", disabled: names[disabled], kept: names[kept]}


def test_an_unreachable_sip_server_does_not_undo_the_change(sip_app, make_account, admin_id, caplog):
    account_id = make_account()
    register_row(sip_app, detached(sip_app, Account, account_id).username)
    sip_app.config["REGISTRAR_CTL"] = "unix:/nonexistent/ctl"

    act(sip_app, admin_id, accounts.set_enabled, account_id, False)

    assert rows(sip_app, subscriber)[0]["enabled"] == 0
    assert "not ended" in caplog.text


def test_a_sip_server_database_away_loses_no_change_and_the_workers_resync_catches_up(
    sip_app, make_account, admin_id, tmp_path, caplog
):
    account_id = make_account()
    registrar_url = sip_app.config["REGISTRAR_DATABASE_URL"]
    sip_app.config["REGISTRAR_DATABASE_URL"] = f"sqlite:///{tmp_path}/no/such/folder/registrar.db"

    act(sip_app, admin_id, accounts.set_enabled, account_id, False)  # no exception reaches the CSR
    created = make_account()

    assert detached(sip_app, Account, account_id).enabled is False
    assert "subscribers were not updated (OperationalError)" in caplog.text
    assert sip_app.test_cli_runner().invoke(args=["registrar-sync"]).exit_code == 1
    sip_app.config["REGISTRAR_DATABASE_URL"] = registrar_url
    assert {row["account_id"]: row["enabled"] for row in rows(sip_app, subscriber)} == {account_id: 1}

    run_worker(sip_app)  # a worker's start resyncs everything

    enabled = {row["account_id"]: row["enabled"] for row in rows(sip_app, subscriber)}
    assert enabled == {account_id: 0, created: 1}


def test_the_worker_turns_registered_accounts_connected(sip_app, make_account):
    account_id = make_account()
    register_row(sip_app, detached(sip_app, Account, account_id).username)

    run_worker(sip_app)

    assert detached(sip_app, Account, account_id).status is Status.CONNECTED


def test_a_restore_gives_the_sip_server_the_restored_accounts(sip_app, make_account, tmp_path):
    kept = make_account()
    with sip_app.app_context():
        copy = backup.backup(tmp_path / "copies")
    make_account()  # after the backup: the restore takes it away, from the SIP server too
    assert len(rows(sip_app, subscriber)) == 2

    with sip_app.app_context():
        backup.restore(copy, replace=True)

    assert [row["account_id"] for row in rows(sip_app, subscriber)] == [kept]


def test_two_accounts_can_swap_usernames_one_edit_at_a_time(sip_app, make_account, admin_id):
    first, second = make_account(username="alpha001"), make_account(username="beta0001")

    with sip_app.app_context():
        actor = staff.get(admin_id)
        for account_id, name in ((first, "swap0001"), (second, "alpha001"), (first, "beta0001")):
            account = db.session.get(Account, account_id)
            accounts.update_account(account, {"username": name, "group_id": account.group_id}, actor=actor)

    assert {row["account_id"]: row["username"] for row in rows(sip_app, subscriber)} == {
        first: "beta0001", second: "alpha001"}


def test_a_full_sync_writes_every_account_in_chunks_and_drops_the_deleted(sip_app, make_account, admin_id,
                                                                          monkeypatch):
    monkeypatch.setattr(registrar, "CHUNK", 2)
    ids = [make_account() for _ in range(5)]
    registrar_url = sip_app.config.pop("REGISTRAR_DATABASE_URL")  # changes the SIP server does not hear of
    act(sip_app, admin_id, accounts.delete, ids[0])
    with sip_app.app_context():
        db.session.execute(Account.__table__.update().where(Account.id == ids[1]).values(enabled=False))
        db.session.commit()
    sip_app.config["REGISTRAR_DATABASE_URL"] = registrar_url
    assert len(rows(sip_app, subscriber)) == 5
    with sip_app.app_context():
        assert registrar.sync()

    found = {row["account_id"]: row["enabled"] for row in rows(sip_app, subscriber)}
    assert found == {ids[1]: 0, ids[2]: 1, ids[3]: 1, ids[4]: 1}
    assert sorted({row["account_id"] for row in rows(sip_app, numbers)}) == ids[1:]


def test_registered_reads_the_julian_days_of_kamailios_sqlite_driver(sip_app, make_account):
    register_row(sip_app, "user0001", expires_in=120)
    register_row(sip_app, "user0002", expires_in=-1)  # expired: Kamailio's timer has not removed it yet
    register_row(sip_app, "user0003", expires_in=60, received=None)

    with sip_app.app_context():
        found = registrar.registered()

    assert [(item.username, item.source, item.user_agent) for item in found] == [
        ("user0003", "10.0.0.7:5060", "Phone/1.0"), ("user0001", "192.0.2.7:5061", "Phone/1.0")]
    assert abs((found[1].expires - utcnow()).total_seconds() - 120) < 2


def test_registered_accounts_move_to_connected_forward_only(sip_app, make_account):
    registered_id, offline_id = make_account(), make_account()
    register_row(sip_app, detached(sip_app, Account, registered_id).username)

    with sip_app.app_context():
        assert devices.mark_registered_connected() == 1
        assert devices.mark_registered_connected() == 0

    assert detached(sip_app, Account, registered_id).status is Status.CONNECTED
    assert detached(sip_app, Account, offline_id).status is Status.CREATED


def test_registered_clients_are_scoped_to_the_staff_users_groups(sip_app, make_account, csr_id, other_group):
    mine, theirs = make_account(), make_account(group_id=other_group, callerid="+41790000999")
    for account_id in (mine, theirs):
        register_row(sip_app, detached(sip_app, Account, account_id).username)

    with sip_app.app_context():
        clients = devices.registered_clients(staff.get(csr_id), 60)

        assert [client.account.id for client in clients] == [mine]
        assert (clients[0].platform, clients[0].app_version) == (None, None)  # never activated


# --- settings and commands ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["postgresql://u:pw@db/provisio", "sqlite:///relative.db", "mysql://db/x",
                                 ""])
def test_a_registrar_url_kamailio_would_read_otherwise_refuses_to_start(database_url, url):
    config = {**make_config(database_url), "REGISTRAR_DATABASE_URL": "sqlite:////var/lib/sip/registrar.db",
              "REGISTRAR_LOCATION_URL": url}

    with pytest.raises(ConfigError, match="REGISTRAR_LOCATION_URL") as refused:
        create_app(config)

    assert "pw" not in str(refused.value)


def test_the_registrar_urls_kamailio_reads_start(database_url):
    app = create_app({**make_config(database_url), "REGISTRAR_DATABASE_URL": "postgres://u:pw@db/provisio",
                      "REGISTRAR_LOCATION_URL": "sqlite:////var/lib/sip/location.db"})

    assert app.config["REGISTRAR_REALM"] == "provisio"


def test_registrar_init_makes_the_files_in_wal_mode_and_sync_fills_them(app, make_account, tmp_path):
    account_id = make_account()
    with_registrar(app, tmp_path)

    assert app.test_cli_runner().invoke(args=["registrar-init"]).exit_code == 0
    result = app.test_cli_runner().invoke(args=["registrar-sync"])

    assert result.exit_code == 0, result.output
    assert [row["account_id"] for row in rows(app, subscriber)] == [account_id]
    for name in ("registrar.db", "registrar-location.db"):
        with sqlite3.connect(tmp_path / name) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o660  # Kamailio's user shares the group


def test_registrar_commands_say_what_to_set_without_a_registrar(app):
    result = app.test_cli_runner().invoke(args=["registrar-sync"])

    assert result.exit_code == 1
    assert "REGISTRAR_DATABASE_URL" in result.output


def test_registrar_run_starts_kamailio_with_its_settings_and_none_of_provisios_secrets(sip_app, monkeypatch):
    started = []
    monkeypatch.setattr("os.execvpe", lambda file, args, env: started.append((file, args, env)))

    result = sip_app.test_cli_runner().invoke(args=["registrar-run"])

    assert result.exit_code == 0, result.output
    [(file, args, env)] = started
    assert (file, args[1:3], args[4]) == ("kamailio", ["-DD", "-E"], registrar.KAMAILIO_CFG)
    assert env["REGISTRAR_REALM"] == REALM and env["KEEPALIVE_INTERVAL"] == "60" and env["TZ"] == "UTC"
    assert not {"SECRET_KEY", "ENCRYPTION_KEYS", "PROVISIO_ENCRYPTION_KEYS"} & set(env)
    assert sip_app.config["SECRET_KEY"] not in str(env)
