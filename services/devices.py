"""What an activated device does afterwards: licence, heartbeat, configuration, public keys."""

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.orm import contains_eager, selectinload

from extensions import db
from models import Account, Device, LicenceState, PublicKey, StaffUser, Status, utcnow
from services import accounts, activation, audit, registrar
from services.errors import ServiceError


class ApiError(ServiceError):
    """A refusal the client app reads: an HTTP status and a machine-readable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class Config:
    """The current configuration of a device and its ETag."""

    document: dict
    etag: str


def authenticate(credential: str) -> Device:
    """Return the device behind a bearer credential; the same 401 for unknown and revoked."""
    device = db.session.scalar(select(Device).where(
        Device.credential_hash == hashlib.sha256(credential.encode()).hexdigest(),
        Device.revoked_at.is_(None),
    )) if credential else None
    if device is None:
        raise ApiError(401, "invalid_credentials", "Unknown or revoked device credential.")
    return device


def require_enabled(device: Device) -> Account:
    """Refuse every call of a disabled account with a reason the app can act on."""
    if not device.account.enabled:
        raise ApiError(403, "account_disabled", "The account is disabled; contact your operator.")
    return device.account


def validate_licence(device: Device, *, today: date | None = None) -> dict:
    """Validate the licence; the first device to ask binds it, another gets 409 until it is cleared."""
    account = require_enabled(device)
    today = today or date.today()
    if account.licence_state is LicenceState.BLOCKED:
        raise ApiError(403, "licence_blocked", "The licence is blocked; contact your operator.")
    if account.licence_expires_on and account.licence_expires_on < today:
        raise ApiError(403, "licence_expired", f"The licence expired on {account.licence_expires_on}.")
    if account.licence_state is LicenceState.VALID and account.licence_device != str(device.id):
        raise ApiError(409, "licence_bound_elsewhere",
                       "The licence is bound to another device; ask your operator to clear it.")
    if account.licence_state is not LicenceState.VALID:
        account.licence_state, account.licence_device = LicenceState.VALID, str(device.id)
        audit.record("device", "licence.bind", account, device=device.id)
    db.session.commit()
    expires = account.licence_expires_on
    return {"valid": True, "expires_on": expires.isoformat() if expires else None}


def heartbeat(device: Device, *, ip: str | None, app_version: str | None, interval: int) -> dict:
    """Record that the client is up: last seen, address, app version, and Connected without a SIP server."""
    account = require_enabled(device)
    device.last_seen, device.ip = utcnow(), ip
    if app_version:
        device.app_version = app_version[:32]
    if not registrar.configured():  # with one, Connected means registered there (mark_registered_connected)
        accounts.set_status(account, Status.CONNECTED, actor="device")
    db.session.commit()
    return {"status": "connected", "next_heartbeat_seconds": interval}


def current_config(device: Device, settings: dict) -> Config:
    """The activation document as it is now (a rotated password arrives here), without the credential."""
    account = require_enabled(device)
    document = activation.document(account, account.effective_profile, settings, credential=None)
    document.pop("client_api")
    # issued_at changes every call; the ETag covers what the client configures.
    stable = json.dumps({k: v for k, v in document.items() if k != "issued_at"}, sort_keys=True, default=str)
    return Config(document, hashlib.sha256(stable.encode()).hexdigest())


def upload_key(device: Device, public_key_pem: str) -> PublicKey:
    """Store the account's new public key, replacing the previous one; refused after "revoke all keys"."""
    account = require_enabled(device)
    if account.keys_locked:
        raise ApiError(409, "keys_locked", "Keys were revoked; activate the account again before uploading.")
    try:
        key = serialization.load_pem_public_key(public_key_pem.encode())
    except (ValueError, TypeError):
        raise ApiError(422, "invalid_key", "public_key must be a PEM-encoded public key.") from None
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    db.session.execute(update(PublicKey)
                       .where(PublicKey.account_id == account.id, PublicKey.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))
    # Store the key as parsed, not as sent: text around the PEM block (NUL bytes included) never
    # reaches peers.
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    stored = PublicKey(account=account, key_pem=pem.strip(), fingerprint=hashlib.sha256(der).hexdigest())
    db.session.add(stored)
    audit.record("device", "key.upload", account, fingerprint=stored.fingerprint)
    db.session.commit()
    return stored


def peer_key(device: Device, username: str) -> PublicKey:
    """Return a peer's current key; an unknown user and a user without a live key look the same."""
    require_enabled(device)
    # No username holds NUL, and PostgreSQL refuses it in a query: the same 404 without asking.
    key = None if "\x00" in username else db.session.scalar(
        select(PublicKey).join(Account).where(Account.username == username, PublicKey.revoked_at.is_(None))
        .order_by(PublicKey.id.desc()).limit(1)
    )
    if key is None:
        raise ApiError(404, "not_found", "No current public key for that username.")
    return key


def online_since(interval_seconds: int):
    """The moment after which a device counts as registered: twice the keep-alive interval ago."""
    return utcnow() - timedelta(seconds=2 * interval_seconds)


@dataclass(frozen=True)
class Client:
    """A line of "Registered clients": an account connected now, where from, and the app it runs."""

    account: Account
    platform: str | None  # what it activated on, in words
    app_version: str | None
    address: str | None
    user_agent: str | None = None  # the SIP client's, with a SIP server
    last_seen: datetime | None = None  # the app's heartbeat, without one
    expires: datetime | None = None  # the registration's, with one


def registered_clients(user: StaffUser, interval_seconds: int) -> list[Client]:
    """The clients of the user's groups connected now: registered at the SIP server when there is one,
    else seen by their heartbeat within twice the keep-alive interval; by username, then newest."""
    if not registrar.configured():
        query = (select(Device).join(Account).options(contains_eager(Device.account))
                 .where(Device.heard_since(online_since(interval_seconds)))
                 .order_by(Account.username, Device.last_seen.desc()))
        devices = db.session.scalars(accounts.scoped(query, user))
        return [Client(device.account, device.platform_name, device.app_version, device.ip,
                       last_seen=device.last_seen) for device in devices]
    by_username: dict[str, list[registrar.Registration]] = {}
    for registration in registrar.registered():
        by_username.setdefault(registration.username, []).append(registration)
    clients = []
    for chunk in registrar.chunks(sorted(by_username)):
        query = (accounts.scoped(select(Account).where(Account.username.in_(chunk)), user)
                 .options(selectinload(Account.devices)))
        for account in db.session.scalars(query):
            device = _newest(account)
            clients += [Client(account, device and device.platform_name, device and device.app_version,
                               registration.source, user_agent=registration.user_agent,
                               expires=registration.expires)
                        for registration in by_username[account.username]]
    return sorted(clients, key=lambda client: client.account.username)


def mark_registered_connected() -> int:
    """Move every account registered at the SIP server now to Connected (never back); return how many."""
    moved = 0
    for chunk in registrar.chunks(sorted(registrar.registered_usernames())):
        query = select(Account).where(Account.username.in_(chunk), Account.status != Status.CONNECTED)
        for account in db.session.scalars(query):
            moved += accounts.set_status(account, Status.CONNECTED, actor="registrar")
    db.session.commit()
    return moved


def _newest(account: Account) -> Device | None:
    """The device the account activated last (a revoked one too: it tells what the client was)."""
    return max(account.devices, key=lambda item: item.first_seen, default=None)
