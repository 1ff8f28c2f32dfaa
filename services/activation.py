"""The end user's side: install clicks and the one-time delivery of the activation file."""

import hashlib
import json
import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from xml.etree import ElementTree

from sqlalchemy import bindparam, exists, func, insert, select, update

from extensions import db
from models import Account, AccountType, AuditEvent, Device, Group, Platform, Profile, Status, StatusEvent, utcnow
from services import accounts, audit, links

SCHEMA = "provisio.activation/1"
END_USER = "end user"


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


def activate(token: str, *, settings: dict, platform: Platform, ip: str | None,
             user_agent: str, app_version: str | None) -> ActivationFile:
    """Consume a link exactly once, activate its account and return the activation file.

    The end user's hottest write, so it reads and writes with a few Core statements on a connection of
    its own (no ORM session, no unit of work) and builds the file before writing: the database's write
    lock is held for the writes alone.
    """
    with db.engine.connect() as connection:
        try:
            account_id, version, _hint = links.verify(token, max_age_hours=settings["link_max_age_hours"])
            account = connection.execute(_ACCOUNT, {"b_id": account_id}).one_or_none()
            links.ensure_alive(account, version)
        except links.LinkGone as exc:
            refuse(None, exc.reason, ip=ip)
            raise
        profile = _profile_of(account)
        credential = secrets.token_urlsafe(32)
        is_snom = account.account_type is AccountType.SNOM
        file = snom_file(account, profile) if is_snom else _json_file(account, profile, settings, credential)
        now = utcnow()
        changes = {"link_version": version + 1, "keys_locked": False}  # the client may upload new keys
        if account.wizard:
            changes["enabled"] = True
        moved = accounts.status_moves(account, Status.ACTIVATED)
        if moved:
            changes.update(status=Status.ACTIVATED, status_channel=None, status_changed_at=now)
        # The version moves only if it is still the one in the link: of concurrent taps, one wins.
        if not connection.execute(_CLAIM, {"b_id": account.id, "b_version": version, **changes}).rowcount:
            connection.rollback()
            refuse(db.session.get(Account, account.id), "used", ip=ip)
            raise links.LinkGone("used")
        if account.has_device:  # one installation per account: the previous credential stops working
            connection.execute(_REVOKE, {"b_account_id": account.id, "revoked_at": now})
        connection.execute(_INSERT_DEVICE, {
            "account_id": account.id, "credential_hash": hashlib.sha256(credential.encode()).hexdigest(),
            "platform": platform, "app_version": (app_version or None) and app_version[:32], "ip": ip,
            "user_agent": user_agent[:512], "first_seen": now, "last_seen": now})
        if moved:
            connection.execute(_INSERT_STATUS_EVENT, {"account_id": account.id, "status": Status.ACTIVATED,
                                                     "channel": None, "actor": END_USER, "created_at": now})
        connection.execute(_INSERT_AUDIT_EVENT, {
            **audit.values(END_USER, "account.activate", ip=ip, platform=platform.value),
            "target_type": "account", "target_id": account.id, "target": account.username})
        connection.commit()
    return file


# Built once: composing a statement costs more than running it. An UPDATE sets the columns each
# call passes; the b_* parameters are the WHERE's.
_PROFILE = Profile.__table__
# One read: the account, its effective profile (its own, else its group's) as profile__* columns, and
# whether a device holds a live credential.
_ACCOUNT = (
    select(Account.__table__, *(column.label(f"profile__{column.key}") for column in _PROFILE.c),
           exists().where(Device.account_id == Account.id, Device.revoked_at.is_(None)).label("has_device"))
    .join(Group.__table__, Group.id == Account.group_id)
    .outerjoin(_PROFILE, _PROFILE.c.id == func.coalesce(Account.profile_id, Group.profile_id))
    .where(Account.id == bindparam("b_id"))
)
_CLAIM = update(Account).where(Account.id == bindparam("b_id"), Account.link_version == bindparam("b_version"))
_REVOKE = update(Device).where(Device.account_id == bindparam("b_account_id"), Device.revoked_at.is_(None))
_INSERT_DEVICE, _INSERT_STATUS_EVENT, _INSERT_AUDIT_EVENT = insert(Device), insert(StatusEvent), insert(AuditEvent)


def _profile_of(row) -> SimpleNamespace | None:
    """The profile__* columns of an _ACCOUNT row under their own names, as document() reads them."""
    if row.profile__id is None:
        return None
    return SimpleNamespace(**{column.key: getattr(row, f"profile__{column.key}") for column in _PROFILE.c})


def refuse(account: Account | None, reason: str, *, ip: str | None) -> None:
    """Audit a refused use of a link (used, superseded, expired …) without its token."""
    audit.record(END_USER, "link.refused", account, ip=ip, reason=reason)
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
                    "transport": profile.transport if profile else "tls"},
            "provisioning": {"host": profile.provisioning_host if profile else None},
            "applications": settings["applications"],
        },
        "client_api": {"base_url": f"{base}/api/client/v1", "credential": credential},
        "licence": {"state": account.licence_state.value,
                    "expires_on": account.licence_expires_on.isoformat() if account.licence_expires_on else None},
        "profile": {"name": profile.name if profile else None, "options": profile.options if profile else {}},
        "refetch": {"interval_hours": profile.refetch_hours if profile else 24,
                    "url": f"{base}/api/client/v1/config"},
    }


def _json_file(account: Account, profile: Profile | None, settings: dict, credential: str) -> ActivationFile:
    body = json.dumps(document(account, profile, settings, credential)).encode()
    return ActivationFile(body, settings["activation_mime_type"], f"{account.username}.provisio")


def snom_file(account: Account, profile: Profile | None) -> ActivationFile:
    """Snom's <settings><phone-settings> format for desk phones (ORM objects or rows, as document())."""
    root = ElementTree.Element("settings")
    phone = ElementTree.SubElement(root, "phone-settings")
    for name, value in (("user_name", account.username), ("user_pass", accounts.sip_password(account)),
                        ("user_host", profile.sip_host if profile else ""),
                        ("user_realname", account.owner or account.username)):
        element = ElementTree.SubElement(phone, name, idx="1", perm="")
        element.text = value
    return ActivationFile(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True),
                          "application/xml", f"{account.username}.xml")
