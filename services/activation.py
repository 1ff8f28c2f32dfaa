"""The end user's side: install clicks and the one-time delivery of the activation file."""

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from xml.etree import ElementTree

from flask import current_app
from sqlalchemy import bindparam, insert, update

from extensions import DriverConnection, DriverStatement, db
from models import (
    Account,
    AccountType,
    AuditEvent,
    Device,
    LicenceState,
    Message,
    Platform,
    Profile,
    Status,
    StatusEvent,
)
from models.base import utcnow
from services import accounts, audit, links, registrar, throttle
from services.errors import Throttled

SCHEMA = "provisio.activation/1"
END_USER = "end user"
STANDARD_SIP_PORTS = {"tls": 5061, "tcp": 5060, "udp": 5060}  # when a profile names no port
T = TypeVar("T")


@dataclass(frozen=True)
class ActivationFile:
    """The body and type of a delivered activation file."""

    body: bytes
    mimetype: str
    filename: str


def download_url(settings: dict, platform: Platform, security_model: str | None) -> str | None:
    """Return where the Install button sends this platform for this security model."""
    urls = settings["download_urls"]
    return urls.get(f"{platform.value}/{security_model}") or urls.get(f"{platform.value}/*")


def record_install(account: Account, platform: Platform) -> None:
    """Note that the end user tapped Install (if the account is not already past it)."""
    if accounts.set_status(account, Status.INSTALLED, actor=END_USER):
        audit.record(END_USER, "account.install_clicked", account, platform=platform.value)
    db.session.commit()


def activate(token: str, *, settings: dict, platform: Platform, ip: str | None, user_agent: str,
             app_version: str | None, respond: Callable[[ActivationFile], T]) -> T:
    """Consume a link exactly once, activate its account and return `respond(file)`, the answer.

    The answer is built (headers included) before the link is consumed: if it cannot be, nothing is.
    The end user's hottest write, so it reads and writes with a few statements on a DriverConnection of
    its own (no ORM session, no Core execution): the database's write lock is held for the writes alone.
    """
    link = None
    try:
        with DriverConnection(db.engine) as connection:
            link = links.read_for_activation(connection, token, max_age_hours=settings["link_max_age_hours"])
            credential = secrets.token_urlsafe(32)
            answer = respond(_file(link, settings, credential))
            _consume(connection, link, Delivery(credential, platform, ip, user_agent, app_version))
        if link.wizard:  # enabled now: the SIP server accepts it from this moment
            registrar.sync([link.id])
    except links.LinkGone as gone:
        refuse(link.id if link else links.account_id_of(gone.link_hash), gone.reason, ip=ip)
        raise
    return answer


@dataclass(frozen=True)
class Delivery:
    """Who fetched an activation file: what its device row records."""

    credential: str
    platform: Platform
    ip: str | None
    user_agent: str
    app_version: str | None


def _file(link, settings: dict, credential: str) -> ActivationFile:
    """The file of a read_for_activation row's account: Snom XML for a desk phone, else the JSON document."""
    profile = links.profile_of(link)
    if link.account_type is AccountType.SNOM:
        return snom_file(link, profile)
    return _json_file(link, profile, settings, credential)


def _consume(connection: DriverConnection, link, delivery: Delivery) -> None:
    """Claim the link, activate the account, record the device and the audit row, and commit.

    Every time column is given (updated_at, created_at): a DriverConnection runs no Python default.
    """
    now = utcnow()
    changes = {"link_version": link.link_version + 1, "keys_locked": False,  # the client may upload new keys
               "updated_at": now}
    if link.wizard:
        changes["enabled"] = True
    if link.licence_state is LicenceState.VALID:
        # The device holding the licence is replaced below (one installation per account): the licence
        # follows to the new one, which binds it at its first validation. A blocked one stays blocked.
        changes.update(licence_state=LicenceState.CLEARED, licence_device=None)
    moved = accounts.status_change(link, Status.ACTIVATED, actor=END_USER)
    if moved:
        changes.update(moved.account_columns)
    # The version moves only if it is still the one in the link: of concurrent taps, one wins.
    claim = {"b_id": link.id, "b_version": link.message_version, **changes}
    if not connection.execute(_CLAIM, claim):
        connection.rollback()
        raise links.LinkGone("reused")
    connection.execute(_USED, {"b_message_id": link.message_id, "link_used_at": now, "updated_at": now})
    if link.has_device:  # one installation per account: the previous credential stops working
        connection.execute(_REVOKE, {"b_account_id": link.id, "revoked_at": now})
    app_version = delivery.app_version
    connection.execute(_INSERT_DEVICE, {
        "account_id": link.id, "credential_hash": hashlib.sha256(delivery.credential.encode()).hexdigest(),
        "platform": delivery.platform, "app_version": (app_version or None) and app_version[:32],
        "ip": delivery.ip, "user_agent": delivery.user_agent[:512], "first_seen": now, "last_seen": now})
    if moved:
        connection.execute(_INSERT_STATUS_EVENT, {"account_id": link.id, **moved.event_columns})
    connection.execute(_INSERT_AUDIT_EVENT, {
        **audit.values(END_USER, "account.activate", ip=delivery.ip, platform=delivery.platform.value),
        "target_type": "account", "target_id": link.id, "target": link.username, "created_at": now})
    connection.commit()


# Built once: composing a statement costs more than running it. An UPDATE sets the columns each
# call passes; the b_* parameters are the WHERE's.
_CLAIM = DriverStatement(update(Account).where(Account.id == bindparam("b_id"),
                                               Account.link_version == bindparam("b_version")))
_USED = DriverStatement(update(Message).where(Message.id == bindparam("b_message_id")))
_REVOKE = DriverStatement(update(Device).where(Device.account_id == bindparam("b_account_id"),
                                               Device.revoked_at.is_(None)))
_INSERT_DEVICE = DriverStatement(insert(Device))
_INSERT_STATUS_EVENT = DriverStatement(insert(StatusEvent))
_INSERT_AUDIT_EVENT = DriverStatement(insert(AuditEvent))


def refuse(account_id: int | None, reason: str, *, ip: str | None) -> None:
    """Count a refused use of a link by its caller's address, audit it, and past the limit raise Throttled.

    A use that names an account (used, superseded, expired …) gets an audit row, without the token.
    A forged or guessed token names none: it is counted, not written one row each, so a flood from one
    address leaves one row (when it crosses the limit) and then answers 429.
    """
    config = current_app.config
    limit, window = config["LINK_REFUSAL_LIMIT"], config["LINK_REFUSAL_WINDOW_SECONDS"]
    account = db.session.get(Account, account_id) if account_id is not None else None

    def crossing() -> None:
        audit.record(END_USER, "link.refused", account, ip=ip, outcome="throttled", reason=reason,
                     limit=limit, window_seconds=window)
        db.session.commit()

    if throttle.over_limit(throttle.client_key("link.refused", ip), limit=limit, window_seconds=window,
                           crossing=crossing):
        raise Throttled("Too many refused links from this network address: try again later.")
    if account is not None:
        audit.record(END_USER, "link.refused", account, ip=ip, outcome="refused", reason=reason)
        db.session.commit()


def document(account: Account, profile: Profile | None, settings: dict, credential: str | None) -> dict:
    """Build the activation document (schema provisio.activation/1, see docs/activation-file.md).

    `account` and `profile` are ORM objects or rows of their tables: only columns are read.
    """
    base = settings["public_base_url"].rstrip("/")
    return {
        "schema": SCHEMA,
        "issued_at": utcnow().isoformat(timespec="seconds"),
        "account": {
            "id": account.uid,
            "username": account.username,
            "password": accounts.sip_password(account),
            "display_name": account.owner,
            "virtual_number": account.callerid,
            "secondary_virtual_number": account.secondary_callerid,
            "security_model": account.security_model,
            "obfuscation": {"enabled": account.obfuscation, "key": account.obfuscation_key},
            "keepalive": {"enabled": account.keepalive,
                          "interval_seconds": settings["keepalive_interval"]},
        },
        "servers": {
            "sip": {"host": profile.sip_host if profile else None,
                    "port": sip_port(profile),
                    "transport": profile.transport if profile else "tls"},
            "provisioning": {"host": profile.provisioning_host if profile else None},
            "applications": settings["applications"],
        },
        "client_api": {"base_url": f"{base}/api/client/v1", "credential": credential},
        "licence": {"state": account.licence_state.value,
                    "expires_on": (account.licence_expires_on.isoformat()
                                   if account.licence_expires_on else None)},
        "profile": {"name": profile.name if profile else None, "options": profile.options if profile else {}},
        "refetch": {"interval_hours": profile.refetch_hours if profile else 24,
                    "url": f"{base}/api/client/v1/config"},
    }


def sip_port(profile: Profile | None) -> int:
    """The port the client reaches the SIP server on: the profile's, else its transport's standard one."""
    transport = profile.transport if profile else "tls"
    return (profile and profile.sip_port) or STANDARD_SIP_PORTS.get(transport, 5060)


def _json_file(account: Account, profile: Profile | None, settings: dict, credential: str) -> ActivationFile:
    body = json.dumps(document(account, profile, settings, credential)).encode()
    return ActivationFile(body, settings["activation_mime_type"], f"{account.username}.provisio")


def snom_file(account: Account, profile: Profile | None) -> ActivationFile:
    """Snom's <settings><phone-settings> format for desk phones (ORM objects or rows, as document())."""
    root = ElementTree.Element("settings")
    phone = ElementTree.SubElement(root, "phone-settings")
    for name, value in (("user_name", account.username), ("user_pass", accounts.sip_password(account)),
                        ("user_host", f"{profile.sip_host}:{sip_port(profile)}" if profile else ""),
                        ("user_realname", account.owner or account.username)):
        element = ElementTree.SubElement(phone, name, idx="1", perm="")
        element.text = value
    return ActivationFile(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True),
                          "application/xml", f"{account.username}.xml")
