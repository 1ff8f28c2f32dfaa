"""The client API (/api/client/v1) and the Snom settings XML over HTTP, with real device credentials."""

import hashlib
import json
from datetime import date, timedelta
from xml.etree import ElementTree

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from extensions import db
from models import Account, AuditEvent, Device, LicenceState, Platform, Status, utcnow
from services import accounts, snom
from tests.webtools import issue_link

APP_VERSION = "2.4.1"
SNOM_MAC = "000413922D24"
SNOM_UA = f"Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 1.1.5-IS {SNOM_MAC})"
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Safari/537.36")


class Device_:
    """An installed app: the test client plus the bearer credential from its activation file."""

    def __init__(self, app, document: dict, *, ip: str = "198.51.100.20"):
        self.http = app.test_client()
        self.document = document
        self.credential = document["client_api"]["credential"]
        self.ip = ip

    @property
    def username(self) -> str:
        return self.document["account"]["username"]

    def call(self, method: str, path: str, *, credential: str | None = None, headers: dict | None = None,
             **kwargs):
        credential = self.credential if credential is None else credential
        headers = {"Authorization": f"Bearer {credential}", **(headers or {})}
        return self.http.open(f"/api/client/v1{path}", method=method, headers=headers,
                              environ_base={"REMOTE_ADDR": self.ip}, **kwargs)


def activate(app, account_id: int, *, ip: str = "198.51.100.20") -> Device_:
    """Activate an account from a fresh link, as the app does: GET /m/<token>/activation."""
    token = issue_link(app, account_id)
    response = app.test_client().get(f"/m/{token}/activation", headers={"X-Provisio-Client": APP_VERSION},
                                     environ_base={"REMOTE_ADDR": ip})
    assert response.status_code == 200, response.data
    document = json.loads(response.data)
    assert document["client_api"]["base_url"].endswith("/api/client/v1")
    return Device_(app, document, ip=ip)


def public_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint_of(pem: str) -> str:
    key = serialization.load_pem_public_key(pem.encode())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def load_account(app, account_id: int) -> Account:
    """A detached copy of the account's columns (read after the context closes)."""
    with app.app_context():
        account = db.session.get(Account, account_id)
        db.session.expunge(account)
        return account


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.data
    assert response.is_json
    body = response.get_json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


# --- licence ---------------------------------------------------------------------------------


def test_licence_is_valid_with_its_expiry_and_the_first_call_binds_it(app, make_account):
    account_id = make_account(licence_expires_on=date(2030, 1, 31))
    device = activate(app, account_id)

    response = device.call("POST", "/licence")

    assert response.status_code == 200
    assert response.get_json() == {"valid": True, "expires_on": "2030-01-31"}
    with app.app_context():
        account = db.session.get(Account, account_id)
        bound = db.session.scalar(select(Device).where(Device.account_id == account_id,
                                                       Device.revoked_at.is_(None)))
        assert account.licence_state is LicenceState.VALID
        assert account.licence_device == str(bound.id)
    assert device.call("POST", "/licence").status_code == 200  # the same device again


def test_licence_without_expiry_answers_null(app, make_account):
    device = activate(app, make_account())
    assert device.call("POST", "/licence").get_json() == {"valid": True, "expires_on": None}


def test_an_expired_licence_is_refused(app, make_account):
    device = activate(app, make_account(licence_expires_on=date.today() - timedelta(days=1)))
    assert_error(device.call("POST", "/licence"), 403, "licence_expired")


def test_a_blocked_licence_is_refused(app, make_account):
    account_id = make_account()
    device = activate(app, account_id)
    with app.app_context():
        db.session.get(Account, account_id).licence_state = LicenceState.BLOCKED
        db.session.commit()
    assert_error(device.call("POST", "/licence"), 403, "licence_blocked")


def test_the_licence_follows_the_account_to_the_device_it_is_activated_on_next(app, make_account, csr):
    account_id = make_account()
    old = activate(app, account_id)
    assert old.call("POST", "/licence").status_code == 200

    # A new link activated on another phone: one installation per account, and its licence.
    new = activate(app, account_id, ip="198.51.100.30")
    assert_error(old.call("POST", "/licence"), 401, "invalid_credentials")
    assert new.call("POST", "/licence").get_json() == {"valid": True, "expires_on": None}

    with app.app_context():
        account = db.session.get(Account, account_id)
        device = db.session.scalar(select(Device).where(Device.account_id == account_id,
                                                        Device.revoked_at.is_(None)))
        assert account.licence_state is LicenceState.VALID and account.licence_device == str(device.id)
        db.session.expunge(device)
    page = csr.get(f"/accounts/{account_id}").get_data(as_text=True)
    assert "bound to the device activated" in page and "(replaced since)" not in page
    assert "device we do not know" not in page


def test_a_blocked_licence_stays_blocked_on_a_new_device(app, make_account):
    account_id = make_account()
    activate(app, account_id)
    with app.app_context():
        db.session.get(Account, account_id).licence_state = LicenceState.BLOCKED
        db.session.commit()

    new = activate(app, account_id, ip="198.51.100.30")

    assert_error(new.call("POST", "/licence"), 403, "licence_blocked")


def test_two_live_devices_of_one_account_cannot_share_the_licence(app, make_account, csr):
    account_id = make_account()
    first = activate(app, account_id)
    second_credential = "second-device-credential-" + "x" * 20
    with app.app_context():
        account = db.session.get(Account, account_id)
        db.session.add(Device(account=account, platform=Platform.ANDROID,
                              credential_hash=hashlib.sha256(second_credential.encode()).hexdigest()))
        db.session.commit()

    assert first.call("POST", "/licence").status_code == 200
    assert_error(first.call("POST", "/licence", credential=second_credential), 409, "licence_bound_elsewhere")
    csr.post(f"/accounts/{account_id}/clear-licence")
    assert first.call("POST", "/licence", credential=second_credential).status_code == 200
    assert_error(first.call("POST", "/licence"), 409, "licence_bound_elsewhere")


# --- refusals common to every endpoint --------------------------------------------------------

ENDPOINTS = [
    ("POST", "/licence", {}),
    ("POST", "/heartbeat", {"json": {"app_version": APP_VERSION}}),
    ("GET", "/config", {}),
    ("PUT", "/keys", {"json": {"public_key": "placeholder"}}),
    ("GET", "/keys/someone", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_a_disabled_account_is_refused_on_every_endpoint(app, make_account, csr, method, path, kwargs):
    account_id = make_account()
    device = activate(app, account_id)
    if path == "/keys":
        kwargs = {"json": {"public_key": public_key_pem()}}
    assert csr.post(f"/accounts/{account_id}/disable").status_code == 302

    assert_error(device.call(method, path, **kwargs), 403, "account_disabled")


@pytest.mark.parametrize(("method", "path", "kwargs"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
@pytest.mark.parametrize("authorization", [None, "Bearer ", "Bearer wrong-credential", "Basic dXNlcjpwYXNz",
                                           "revoked"])
def test_a_wrong_missing_or_revoked_credential_gets_401(
    app, make_account, method, path, kwargs, authorization
):
    account_id = make_account()
    device = activate(app, account_id)
    if authorization == "revoked":
        activate(app, account_id)  # a new activation revokes the first device's credential
        authorization = f"Bearer {device.credential}"
    headers = {"Authorization": authorization} if authorization else {}

    response = device.http.open(f"/api/client/v1{path}", method=method, headers=headers, **kwargs)

    assert_error(response, 401, "invalid_credentials")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.get_json()["message"] == "Unknown or revoked device credential."  # all alike
    assert "Set-Cookie" not in response.headers


# --- heartbeat and registered clients -----------------------------------------------------------


def test_heartbeat_sets_connected_and_records_address_and_app_version(app, make_account, csr):
    account_id = make_account()
    idle_id = make_account()  # never activated, never registered
    device = activate(app, account_id, ip="203.0.113.7")

    response = device.call("POST", "/heartbeat", json={"app_version": "2.5.0-beta"})

    assert response.status_code == 200
    assert response.get_json() == {"status": "connected", "next_heartbeat_seconds": 60}
    account = load_account(app, account_id)
    assert account.status is Status.CONNECTED
    with app.app_context():
        row = db.session.scalar(select(Device).where(Device.account_id == account_id))
        assert (row.ip, row.app_version) == ("203.0.113.7", "2.5.0-beta")

    page = csr.get("/clients").get_data(as_text=True)
    assert f">{account.username}</a>" in page
    assert "203.0.113.7" in page and "2.5.0-beta" in page

    idle = load_account(app, idle_id)
    registered = csr.get("/accounts?registered=1").get_data(as_text=True)
    assert f">{account.username}</a>" in registered
    assert f">{idle.username}</a>" not in registered
    everyone = csr.get("/accounts").get_data(as_text=True)
    assert f">{idle.username}</a>" in everyone


def test_heartbeat_without_a_body_keeps_the_app_version(app, make_account):
    account_id = make_account()
    device = activate(app, account_id)
    assert device.call("POST", "/heartbeat").status_code == 200
    with app.app_context():
        stored = db.session.scalar(select(Device.app_version).where(Device.account_id == account_id))
        assert stored == APP_VERSION


@pytest.mark.parametrize(("seconds_ago", "listed"), [(2 * 60 - 10, True), (2 * 60 + 10, False)])
def test_registered_clients_are_those_seen_within_twice_the_keepalive_interval(
    app, make_account, csr, seconds_ago, listed
):
    account_id = make_account()
    device = activate(app, account_id)
    assert device.call("POST", "/heartbeat", json={"app_version": APP_VERSION}).status_code == 200
    with app.app_context():
        row = db.session.scalar(select(Device).where(Device.account_id == account_id))
        row.first_seen = utcnow() - timedelta(hours=1)  # activated an hour ago, heard from since
        row.last_seen = utcnow() - timedelta(seconds=seconds_ago)
        db.session.commit()
    username = device.username

    assert (f">{username}</a>" in csr.get("/clients").get_data(as_text=True)) is listed
    assert (f">{username}</a>" in csr.get("/accounts?registered=1").get_data(as_text=True)) is listed


def test_a_device_that_only_activated_is_not_a_registered_client(app, make_account, csr):
    account_id = make_account()
    device = activate(app, account_id)  # the activation file fetched, no heartbeat yet

    assert f">{device.username}</a>" not in csr.get("/clients").get_data(as_text=True)
    assert f">{device.username}</a>" not in csr.get("/accounts?registered=1").get_data(as_text=True)

    assert device.call("POST", "/heartbeat").status_code == 200

    page = csr.get("/clients").get_data(as_text=True)
    assert f">{device.username}</a>" in page and APP_VERSION in page
    assert "device we do not know" not in page  # the app's own User-Agent says no platform: a dash


# --- configuration ----------------------------------------------------------------------------


def test_config_answers_304_for_its_etag_and_a_new_etag_after_password_rotation(app, make_account, csr):
    account_id = make_account()
    device = activate(app, account_id)

    first = device.call("GET", "/config")
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "no-store"
    document = first.get_json()
    assert "client_api" not in document
    assert document["account"]["password"] == device.document["account"]["password"] == "Sip-password-1234"

    unchanged = device.call("GET", "/config", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""
    assert unchanged.headers["ETag"] == etag

    assert csr.post(f"/accounts/{account_id}/rotate-password").status_code == 302
    with app.app_context():
        new_password = accounts.sip_password(db.session.get(Account, account_id))
    assert new_password != "Sip-password-1234"

    rotated = device.call("GET", "/config", headers={"If-None-Match": etag})
    assert rotated.status_code == 200
    assert rotated.headers["ETag"] != etag
    assert rotated.get_json()["account"]["password"] == new_password
    unchanged = device.call("GET", "/config", headers={"If-None-Match": rotated.headers["ETag"]})
    assert unchanged.status_code == 304


# --- public keys ------------------------------------------------------------------------------


def test_keys_upload_lookup_revoke_and_reupload_after_reactivation(app, make_account, csr):
    owner_id, peer_id = make_account(), make_account()
    owner, peer = activate(app, owner_id), activate(app, peer_id)
    pem = public_key_pem()

    uploaded = owner.call("PUT", "/keys", json={"public_key": pem})
    assert uploaded.status_code == 201
    assert uploaded.get_json() == {"fingerprint": fingerprint_of(pem)}
    found = peer.call("GET", f"/keys/{owner.username}")
    assert found.status_code == 200
    assert found.get_json() == {"username": owner.username, "public_key": pem.strip(),
                                "fingerprint": fingerprint_of(pem)}

    assert csr.post(f"/accounts/{owner_id}/revoke-keys").status_code == 302
    assert_error(peer.call("GET", f"/keys/{owner.username}"), 404, "not_found")
    assert_error(owner.call("PUT", "/keys", json={"public_key": public_key_pem()}), 409, "keys_locked")
    assert_error(owner.call("PUT", "/keys", json={"public_key": public_key_pem()}), 409, "keys_locked")

    owner = activate(app, owner_id)  # provisioned again
    fresh = public_key_pem()
    assert owner.call("PUT", "/keys", json={"public_key": fresh}).status_code == 201
    assert peer.call("GET", f"/keys/{owner.username}").get_json()["public_key"] == fresh.strip()


def test_a_new_upload_replaces_the_previous_key(app, make_account):
    device = activate(app, make_account())
    first, second = public_key_pem(), public_key_pem()
    device.call("PUT", "/keys", json={"public_key": first})
    device.call("PUT", "/keys", json={"public_key": second})
    assert device.call("GET", f"/keys/{device.username}").get_json()["fingerprint"] == fingerprint_of(second)


@pytest.mark.parametrize("body", [
    "not a key",
    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
])
def test_a_body_that_is_not_a_public_key_gets_422(app, make_account, body):
    device = activate(app, make_account())
    assert_error(device.call("PUT", "/keys", json={"public_key": body}), 422, "invalid_key")


@pytest.mark.parametrize(("method", "path", "data", "code"), [
    ("PUT", "/keys", "{not json", "invalid_json"),
    ("PUT", "/keys", '["a list"]', "invalid_json"),
    ("PUT", "/keys", "", "invalid_json"),
    ("PUT", "/keys", '{"public_key": 5}', "invalid_body"),
    ("PUT", "/keys", '{"other": "field"}', "invalid_body"),
    ("POST", "/heartbeat", "{not json", "invalid_json"),
    ("POST", "/heartbeat", '"a string"', "invalid_json"),
    ("POST", "/heartbeat", '{"app_version": 5}', "invalid_body"),
])
def test_malformed_bodies_get_400(app, make_account, method, path, data, code):
    device = activate(app, make_account())
    response = device.call(method, path, data=data, content_type="application/json")
    assert_error(response, 400, code)


@pytest.mark.parametrize(("method", "path"), [("PUT", "/keys"), ("POST", "/heartbeat"), ("POST", "/licence")])
def test_a_body_over_16_kib_gets_413(app, make_account, method, path):
    device = activate(app, make_account())
    body = json.dumps({"public_key": "A" * (16 * 1024)})
    assert_error(device.call(method, path, data=body, content_type="application/json"), 413, "body_too_large")


def test_a_body_of_exactly_16_kib_is_read(app, make_account):
    device = activate(app, make_account())
    prefix, suffix = '{"public_key": "', '"}'
    body = prefix + "A" * (16 * 1024 - len(prefix) - len(suffix)) + suffix
    assert len(body) == 16 * 1024
    assert_error(device.call("PUT", "/keys", data=body, content_type="application/json"), 422, "invalid_key")


def test_unknown_user_and_user_without_key_give_the_same_404(app, make_account):
    device = activate(app, make_account())
    keyless = load_account(app, make_account())

    unknown = device.call("GET", "/keys/nobody-like-this")
    without_key = device.call("GET", f"/keys/{keyless.username}")

    assert_error(unknown, 404, "not_found")
    assert (without_key.status_code, without_key.data) == (unknown.status_code, unknown.data)


def test_a_key_is_stored_and_served_as_parsed_without_the_text_around_it(app, make_account):
    device = activate(app, make_account())
    pem = public_key_pem()
    assert device.call("PUT", "/keys", json={"public_key": f"junk\x00\n{pem}\x00"}).status_code == 201
    assert device.call("GET", f"/keys/{device.username}").get_json()["public_key"] == pem.strip()


# NUL cannot be stored in or compared with PostgreSQL text: these answered 500 there.
def test_an_app_version_with_a_nul_byte_gets_400(app, make_account):
    device = activate(app, make_account())
    assert_error(device.call("POST", "/heartbeat", json={"app_version": "2.4\x001"}), 400, "invalid_body")


def test_a_username_with_a_nul_byte_gets_the_same_404(app, make_account):
    device = activate(app, make_account())
    unknown = device.call("GET", "/keys/nobody-like-this")
    with_nul = device.call("GET", f"/keys/{device.username}%00")
    assert (with_nul.status_code, with_nul.data) == (unknown.status_code, unknown.data)


# --- Snom desk phones -------------------------------------------------------------------------


@pytest.fixture
def snom_account(make_account):
    return make_account(account_type="snom", mac_address=SNOM_MAC, security_model=None,
                        deny=["0.0.0.0/0.0.0.0"], permit=["127.0.0.1/255.255.255.255"])


def settings_path(app, account_id: int, mac: str = SNOM_MAC) -> str:
    """Make the account's settings secret, as a CSR's Rotate does; return the phone's URL path for `mac`."""
    with app.app_context():
        account = db.session.get(Account, account_id)
        secret = snom.rotate_secret(account, actor="test")
    return f"/snom/{secret}/{mac}.xml"


def snom_get(app, url: str, *, ip: str = "127.0.0.1", user_agent: str = SNOM_UA):
    return app.test_client().get(url, headers={"User-Agent": user_agent}, environ_base={"REMOTE_ADDR": ip})


def phone_settings(response) -> dict[str, str]:
    root = ElementTree.fromstring(response.data)
    assert root.tag == "settings"
    return {element.tag: element.text or "" for element in root.find("phone-settings")}


def test_snom_settings_are_served_to_a_permitted_address(app, snom_account):
    response = snom_get(app, settings_path(app, snom_account))

    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.headers["Cache-Control"] == "no-store"
    account = load_account(app, snom_account)
    assert phone_settings(response) == {"user_name": account.username, "user_pass": "Sip-password-1234",
                                        "user_host": "sip.example.net:5061", "user_realname": "Anna Meier"}
    assert account.status is Status.ACTIVATED


def test_snom_mac_is_matched_in_any_case(app, snom_account):
    assert snom_get(app, settings_path(app, snom_account, SNOM_MAC.lower())).status_code == 200


def test_snom_settings_are_refused_to_a_denied_address_and_audited(app, snom_account):
    response = snom_get(app, settings_path(app, snom_account), ip="10.1.2.3")

    assert_error(response, 403, "address_refused")
    assert b"Sip-password" not in response.data
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "snom.fetch"))
        assert (event.ip, event.target_id, event.outcome) == ("10.1.2.3", snom_account, "refused")
        assert event.detail["reason"] == "address_refused"
    assert load_account(app, snom_account).status is Status.CREATED


@pytest.mark.parametrize("mac", ["001122334455", "nothexatall!", "0004139"])
def test_snom_unknown_mac_gets_404(app, snom_account, mac):
    assert_error(snom_get(app, settings_path(app, snom_account, mac)), 404, "not_found")


def test_snom_disabled_account_is_refused(app, snom_account, csr):
    path = settings_path(app, snom_account)
    csr.post(f"/accounts/{snom_account}/disable")
    assert_error(snom_get(app, path), 403, "account_disabled")


def first_boot_url(app, account_id: int) -> str:
    return f"/snom/first/{issue_link(app, account_id)}.xml"


def test_first_boot_binds_the_mac_from_the_user_agent(app, make_account):
    account_id = make_account(account_type="snom", security_model=None)
    response = snom_get(app, first_boot_url(app, account_id))

    assert response.status_code == 200
    assert phone_settings(response)["user_pass"] == "Sip-password-1234"
    assert load_account(app, account_id).mac_address == SNOM_MAC
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "snom.bind_mac")) is not None
    assert snom_get(app, settings_path(app, account_id)).status_code == 200  # from now on at its secret URL


def test_first_boot_refuses_a_browser_and_changes_nothing(app, make_account):
    account_id = make_account(account_type="snom", security_model=None)
    response = snom_get(app, first_boot_url(app, account_id), user_agent=BROWSER_UA)

    assert_error(response, 400, "not_a_snom_phone")
    account = load_account(app, account_id)
    assert account.mac_address is None and account.status is Status.CREATED


def test_first_boot_refuses_another_phone_once_a_mac_is_bound(app, snom_account):
    other_ua = SNOM_UA.replace(SNOM_MAC, "000413AABBCC")
    response = snom_get(app, first_boot_url(app, snom_account), user_agent=other_ua)

    assert_error(response, 403, "other_phone")
    assert load_account(app, snom_account).mac_address == SNOM_MAC


def test_first_boot_refuses_a_mac_bound_to_another_account(app, make_account, snom_account):
    account_id = make_account(account_type="snom", security_model=None)
    assert_error(snom_get(app, first_boot_url(app, account_id)), 409, "mac_in_use")
    assert load_account(app, account_id).mac_address is None


def test_first_boot_applies_the_address_rules_and_binds_nothing_when_refused(app, make_account):
    account_id = make_account(account_type="snom", security_model=None, deny=["10.0.0.0/255.0.0.0"])
    assert_error(snom_get(app, first_boot_url(app, account_id), ip="10.1.2.3"), 403, "address_refused")
    assert load_account(app, account_id).mac_address is None


def test_first_boot_with_a_dead_token_gets_410(app, snom_account):
    assert_error(snom_get(app, "/snom/first/not-a-token.xml"), 410, "link_gone")


def test_phone_of_reads_model_firmware_and_mac():
    assert snom.phone_of(SNOM_UA) == ("D785", "10.1.33.33", SNOM_MAC)
    assert snom.phone_of(SNOM_UA.replace(SNOM_MAC, SNOM_MAC.lower())) == ("D785", "10.1.33.33", SNOM_MAC)
    assert snom.phone_of("Mozilla/4.0 (compatible; snom370-SIP 8.7.5.35 1.1.3-n 00041325A1B2)") == (
        "370", "8.7.5.35", "00041325A1B2")
    assert snom.phone_of(BROWSER_UA) is None
    assert snom.phone_of("") is None


def test_snom_settings_by_secret_are_refused_to_a_browser_or_another_phone(app, make_account):
    account_id = make_account(account_type="snom", mac_address="000413922D24", security_model=None)
    path = settings_path(app, account_id)
    phone_ua = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 1.1.5-IS {})"
    client = app.test_client()
    browser = client.get(path, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    other = client.get(path, headers={"User-Agent": phone_ua.format("000413922D99")})
    assert browser.status_code == other.status_code == 404
    assert b"user_pass" not in browser.data + other.data
    same = client.get(path, headers={"User-Agent": phone_ua.format("000413922D24")})
    assert same.status_code == 200 and b"<user_pass" in same.data
