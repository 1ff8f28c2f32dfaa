"""Staff users: passwords (argon2id), roles, group scope, server-side sessions."""

import functools
import hashlib
import hmac
import secrets
import time
from datetime import timedelta

import pyotp
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import func, select, update

from extensions import db, vault
from models import AuditEvent, Group, Role, StaffSession, StaffUser, utcnow
from services import audit
from services.errors import Conflict, Invalid, NotFound, Throttled

MIN_PASSWORD_LENGTH = 12
INVALID_LOGIN = "Unknown username or wrong password."


def check_password_strength(password: str, username: str = "") -> None:
    """Refuse passwords a person could guess."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"Use at least {MIN_PASSWORD_LENGTH} characters.", field="password")
    if username and username.lower() in password.lower():
        raise Invalid("The password must not contain the username.", field="password")
    if len(set(password)) < 5:
        raise Invalid("The password repeats too few different characters.", field="password")


def list_staff() -> list[StaffUser]:
    """Return every staff user, by username."""
    return list(db.session.scalars(select(StaffUser).order_by(StaffUser.username)))


def get(staff_id: int) -> StaffUser:
    """Return one staff user or raise NotFound."""
    user = db.session.get(StaffUser, staff_id)
    if user is None:
        raise NotFound("No such staff user.")
    return user


def find(username: str) -> StaffUser | None:
    """The staff user of this username (any case), or None."""
    return db.session.scalar(select(StaffUser).where(func.lower(StaffUser.username) == username.strip().lower()))


def create(
    *, username: str, password: str, role: Role, full_name: str = "",
    group_ids: list[int] | None = None, actor: StaffUser | str,
) -> StaffUser:
    """Create a staff user with a hashed password."""
    username = username.strip()
    if db.session.scalar(select(StaffUser.id).where(func.lower(StaffUser.username) == username.lower())):
        raise Conflict(f"The username {username} is already taken.", field="username")
    check_password_strength(password, username)
    user = StaffUser(
        username=username, full_name=full_name, role=role, password_hash=_hasher().hash(password)
    )
    user.groups = _groups(group_ids or [])
    db.session.add(user)
    db.session.flush()
    audit.record(actor, "staff.create", user, role=str(role))
    db.session.commit()
    return user


def update_user(
    user: StaffUser, *, role: Role, full_name: str, active: bool, group_ids: list[int],
    actor: StaffUser,
) -> StaffUser:
    """Change a staff user's role, name, scope or activity; deactivation ends their sessions."""
    if user.id == actor.id and (role is not Role.ADMIN or not active):
        raise Invalid("You cannot remove your own administrator rights or deactivate yourself.")
    user.role, user.full_name, user.active = role, full_name, active
    user.groups = _groups(group_ids)
    if not active:
        _revoke_sessions(user)
    audit.record(actor, "staff.update", user, role=str(role), active=active)
    db.session.commit()
    return user


def change_password(user: StaffUser, *, current: str, new: str, ip: str | None) -> None:
    """Change one's own password; every other session of the user is signed out."""
    if not _verify(user.password_hash, current):
        raise Invalid("The current password is wrong.", field="current")
    check_password_strength(new, user.username)
    user.password_hash = _hasher().hash(new)
    _revoke_sessions(user, keep=user.session_id)
    audit.record(user, "staff.password_change", user, ip=ip)
    db.session.commit()


def reset_password(user: StaffUser, *, new: str, actor: StaffUser) -> None:
    """Set another staff user's password (admin); all their sessions end."""
    check_password_strength(new, user.username)
    user.password_hash = _hasher().hash(new)
    _revoke_sessions(user)
    audit.record(actor, "staff.password_reset", user)
    db.session.commit()


def authenticate(username: str, password: str, *, ip: str | None, user_agent: str | None) -> StaffUser:
    """Check credentials and open a server-side session (for users who sign in without a code)."""
    return open_session(check_password(username, password, ip=ip), ip=ip, user_agent=user_agent)


def check_password(username: str, password: str, *, ip: str | None) -> StaffUser:
    """The first step of signing in: the same answer for every failure, failures counted for throttling."""
    username = username.strip()
    _check_throttle(username)
    user = find(username)
    # An unknown username is checked against a dummy hash, so both answers take the same time.
    ok = _verify(user.password_hash if user else _dummy_hash(), password)
    if not (ok and user is not None and user.active):
        audit.record(username[:64] or "-", "auth.login_failed", ip=ip)
        db.session.commit()
        raise Invalid(INVALID_LOGIN)
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = _hasher().hash(password)
        db.session.commit()
    return user


def open_session(user: StaffUser, *, ip: str | None, user_agent: str | None) -> StaffUser:
    """Open a server-side session for a user who passed every step; its token goes in the cookie."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        StaffSession(user=user, token_hash=_digest(token), ip=ip, user_agent=(user_agent or "")[:256])
    )
    user.last_login_at = utcnow()
    audit.record(user, "auth.login", user, ip=ip, second_factor=user.totp_secret_encrypted is not None)
    db.session.commit()
    user.session_id = token
    return user


# -- TOTP second factor ------------------------------------------------------------------------------

def needs_second_factor(user: StaffUser) -> bool:
    """Whether signing in takes a code: the user set one up, or their role must have one."""
    return user.totp_secret_encrypted is not None or user.role.value in current_app.config["TOTP_REQUIRED_ROLES"]


def new_totp_secret() -> str:
    """A fresh authenticator secret; it is stored only once a code from the app confirms it."""
    return pyotp.random_base32()


def totp_uri(user: StaffUser, secret: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=current_app.config["TOTP_ISSUER"])


def enable_totp(user: StaffUser, secret: str, code: str, *, ip: str | None) -> None:
    """Turn on the authenticator the user just set up, once it shows a right code; stored encrypted."""
    _check_throttle(user.username)
    step = _matching_step(secret, code)
    if step is None:
        _code_failed(user, ip)
    user.totp_secret_encrypted, user.totp_last_step = vault.encrypt(secret), step
    audit.record(user, "auth.totp_enabled", user, ip=ip)
    db.session.commit()


def check_totp(user: StaffUser, code: str, *, ip: str | None) -> None:
    """The second step of signing in: a right code, used once (a replayed code is refused)."""
    _check_throttle(user.username)
    if user.totp_secret_encrypted is None:
        raise Invalid("Set up an authenticator first.", field="code")
    step = _matching_step(vault.decrypt(user.totp_secret_encrypted), code)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        _code_failed(user, ip)
    user.totp_last_step = step
    db.session.commit()


def reset_totp(user: StaffUser, *, actor: StaffUser | str) -> None:
    """Forget a user's authenticator (a lost phone); they set up a new one at their next sign-in."""
    user.totp_secret_encrypted = user.totp_last_step = None
    _revoke_sessions(user)
    audit.record(actor, "staff.totp_reset", user)
    db.session.commit()


def _matching_step(secret: str, code: str) -> int | None:
    """The time step whose code this is (the previous and next one allowed for clock drift), or None."""
    code = "".join(code.split())
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp, now = pyotp.TOTP(secret), int(time.time())
    for step in (now // 30, now // 30 - 1, now // 30 + 1):
        if hmac.compare_digest(totp.at(step * 30), code):
            return step
    return None


def _code_failed(user: StaffUser, ip: str | None) -> None:
    audit.record(user.username, "auth.login_failed", ip=ip, second_factor=True)  # counts for throttling
    db.session.commit()
    raise Invalid("Wrong or already used code. Type the 6 digits your authenticator app shows now.", field="code")


def load_session(token: str) -> StaffUser | None:
    """Return the active user behind a session cookie, or None if it was revoked."""
    session = db.session.scalar(
        select(StaffSession).where(
            StaffSession.token_hash == _digest(token), StaffSession.revoked_at.is_(None)
        )
    )
    if session is None or not session.user.active:
        return None
    session.user.session_id = token
    return session.user


def logout(user: StaffUser, *, ip: str | None) -> None:
    """Revoke the current session server-side, so a copied cookie is worthless."""
    if user.session_id:
        db.session.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == _digest(user.session_id))
            .values(revoked_at=utcnow())
        )
    audit.record(user, "auth.logout", user, ip=ip)
    db.session.commit()


def ensure_first_admin(username: str = "admin") -> str | None:
    """Create the first administrator if there is no staff user; return its password once."""
    if db.session.scalar(select(func.count(StaffUser.id))):
        return None
    password = secrets.token_urlsafe(15)
    create(username=username, password=password, role=Role.ADMIN, full_name="Administrator",
           actor="system")
    return password


def _check_throttle(username: str) -> None:
    """Count recent failures in the database, so the limit holds across workers and restarts."""
    config = current_app.config
    since = utcnow() - timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
    failures = db.session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "auth.login_failed",
            AuditEvent.created_at >= since,
            func.lower(AuditEvent.actor) == username.lower(),
        )
    )
    if failures >= config["LOGIN_MAX_FAILURES"]:
        raise Throttled(
            f"Too many failed sign-ins for this username. Try again in "
            f"{config['LOGIN_LOCK_MINUTES']} minutes."
        )


def _revoke_sessions(user: StaffUser, keep: str | None = None) -> None:
    query = update(StaffSession).where(
        StaffSession.user_id == user.id, StaffSession.revoked_at.is_(None)
    )
    if keep:
        query = query.where(StaffSession.token_hash != _digest(keep))
    db.session.execute(query.values(revoked_at=utcnow()))


def _groups(group_ids: list[int]) -> list[Group]:
    return list(db.session.scalars(select(Group).where(Group.id.in_(group_ids)))) if group_ids else []


@functools.cache
def _hasher_for(profile: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(getattr(profiles, profile))


@functools.cache
def _dummy_hash_for(profile: str) -> str:
    return _hasher_for(profile).hash("provisio-dummy-password")


def _hasher() -> PasswordHasher:
    """argon2id with the configured parameter profile (RFC 9106 low-memory by default)."""
    return _hasher_for(current_app.config["PASSWORD_HASH_PROFILE"])


def _dummy_hash() -> str:
    return _dummy_hash_for(current_app.config["PASSWORD_HASH_PROFILE"])


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
