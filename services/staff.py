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
from sqlalchemy import delete, func, or_, select, update

from extensions import db, vault
from models import Group, Role, StaffSession, StaffUser, utcnow
from services import audit, throttle
from services.errors import Conflict, Invalid, NotFound, Throttled

MIN_PASSWORD_LENGTH = 12
INVALID_LOGIN = "Unknown username or wrong password."
WRONG_CODE = "Wrong or already used code. Type the 6 digits your authenticator app shows now."
# How often a session's last_seen_at moves forward: the idle limit is exact to this much.
SEEN_EVERY = timedelta(minutes=1)


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
    folded = username.strip().lower()
    return db.session.scalar(select(StaffUser).where(func.lower(StaffUser.username) == folded))


def create(
    *, username: str, password: str, role: Role, full_name: str = "",
    group_ids: list[int] | None = None, actor: StaffUser | str,
) -> StaffUser:
    """Create a staff user with a hashed password."""
    if not password:
        raise Invalid("A new staff user needs a password.", field="password")
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
    password: str = "", actor: StaffUser,
) -> StaffUser:
    """Change a staff user's role, name, scope, activity and (unless empty) password in one transaction.

    A refused change (a weak password, one's own demotion) changes nothing at all. Deactivation and a
    new password end all their sessions.
    """
    if password:
        check_password_strength(password, user.username)
    if user.id == actor.id and (role is not Role.ADMIN or not active):
        raise Invalid("You cannot remove your own administrator rights or deactivate yourself.")
    user.role, user.full_name, user.active = role, full_name, active
    user.groups = _groups(group_ids)
    audit.record(actor, "staff.update", user, role=str(role), active=active)
    if password:
        _set_password(user, password, actor=actor)
    elif not active:
        _revoke_sessions(user)
    db.session.commit()
    return user


def reset_password(user: StaffUser, *, new: str, actor: StaffUser | str) -> None:
    """Give a staff user a new password (`flask reset-password`); all their sessions end."""
    check_password_strength(new, user.username)
    _set_password(user, new, actor=actor)
    db.session.commit()


def _set_password(user: StaffUser, password: str, *, actor: StaffUser | str) -> None:
    user.password_hash = _hasher().hash(password)
    audit.record(actor, "staff.password_reset", user)
    _revoke_sessions(user)


def change_password(user: StaffUser, *, current: str, new: str, ip: str | None) -> None:
    """Change one's own password; every other session of the user is signed out."""
    _count_attempt(user.username, ip=ip)  # a stolen session guesses no faster than the sign-in page
    if not _verify(user.password_hash, current):
        raise Invalid("The current password is wrong.", field="current")
    check_password_strength(new, user.username)
    user.password_hash = _hasher().hash(new)
    _revoke_sessions(user, keep=user.session_id)
    audit.record(user, "staff.password_change", user, ip=ip)
    db.session.commit()
    throttle.reset(_throttle_key(user.username))  # a right password ends the count, as a sign-in does


def check_password(username: str, password: str, *, ip: str | None) -> StaffUser:
    """The first step of signing in: the same answer for every failure, failures counted for throttling."""
    username = username.strip()
    _count_attempt(username, ip=ip)  # before argon2: above the limit no hash is checked at all
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
    token, now = secrets.token_urlsafe(32), utcnow()
    # Sessions past the absolute limit can never be honoured again: they go, whoever's they were.
    db.session.execute(delete(StaffSession).where(StaffSession.created_at < now - _session_max_age()))
    db.session.add(StaffSession(user=user, token_hash=_digest(token), ip=ip, created_at=now,
                                last_seen_at=now, user_agent=(user_agent or "")[:256]))
    user.last_login_at = now
    audit.record(user, "auth.login", user, ip=ip, second_factor=user.totp_secret_encrypted is not None)
    db.session.commit()
    throttle.reset(_throttle_key(user.username))  # a completed sign-in ends the count
    user.session_id = token
    return user


# -- TOTP second factor ------------------------------------------------------------------------------

def needs_second_factor(user: StaffUser) -> bool:
    """Whether signing in takes a code: the user set one up, or their role must have one."""
    return (user.totp_secret_encrypted is not None
            or user.role.value in current_app.config["TOTP_REQUIRED_ROLES"])


def new_totp_secret() -> str:
    """A fresh authenticator secret; it is stored only once a code from the app confirms it."""
    return pyotp.random_base32()


def totp_uri(user: StaffUser, secret: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.username,
                                               issuer_name=current_app.config["TOTP_ISSUER"])


def enable_totp(user: StaffUser, secret: str, code: str, *, ip: str | None) -> None:
    """At a sign-in, turn on the first authenticator of a user whose role needs one, once it shows
    a right code."""
    _count_attempt(user.username, ip=ip)
    step = _matching_step(secret, code)
    if step is None:
        _code_failed(user, ip)
    # Only while none is set: of two half-done sign-ins setting up at once, one wins, the other is refused.
    claimed = db.session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id, StaffUser.totp_secret_encrypted.is_(None))
        .values(totp_secret_encrypted=vault.encrypt(secret), totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        _code_failed(user, ip)
    audit.record(user, "auth.totp_enabled", user, ip=ip)
    db.session.commit()


def replace_totp(
    user: StaffUser, secret: str, *, password: str, old_code: str, code: str, ip: str | None
) -> None:
    """Turn on or replace a signed-in user's authenticator: the password, the old app's code and
    the new one's.

    A session alone (a browser left open, a stolen cookie) cannot swap the second factor; the
    user's other sessions end, as after a password change.
    """
    _count_attempt(user.username, ip=ip)
    if not _verify(user.password_hash, password):
        audit.record(user, "auth.totp_change_refused", user, ip=ip, outcome="refused", reason="password")
        db.session.commit()
        raise Invalid("The current password is wrong.", field="password")
    replacing = user.totp_secret_encrypted is not None
    last_step = None
    if replacing:
        last_step = _matching_step(vault.decrypt(user.totp_secret_encrypted), old_code)
        if last_step is None or not _claim_step(user, last_step):
            _code_failed(user, ip, field="old_code")
    step = _matching_step(secret, code)
    if step is None:
        _code_failed(user, ip)
    user.totp_secret_encrypted = vault.encrypt(secret)
    user.totp_last_step = max(step, last_step or step)  # neither code works a second time
    _revoke_sessions(user, keep=user.session_id)
    audit.record(user, "auth.totp_replaced" if replacing else "auth.totp_enabled", user, ip=ip)
    db.session.commit()


def check_totp(user: StaffUser, code: str, *, ip: str | None) -> None:
    """The second step of signing in: a right code, used once (a replayed code is refused)."""
    _count_attempt(user.username, ip=ip)
    if user.totp_secret_encrypted is None:
        raise Invalid("Set up an authenticator first.", field="code")
    step = _matching_step(vault.decrypt(user.totp_secret_encrypted), code)
    if step is None or not _claim_step(user, step):
        _code_failed(user, ip)
    db.session.commit()


def _claim_step(user: StaffUser, step: int) -> bool:
    """Record `step` as used unless it or a later one already was; one statement, so of two
    requests posting the same code at once exactly one claims it (the row decides, not a read)."""
    claimed = db.session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id,
               or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    return claimed == 1


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


def _code_failed(user: StaffUser, ip: str | None, field: str = "code") -> None:
    """Audit a wrong or replayed code and refuse it (the attempt was counted before the check)."""
    db.session.rollback()  # nothing of a refused step is kept
    audit.record(user.username, "auth.login_failed", ip=ip, second_factor=True)
    db.session.commit()
    raise Invalid(WRONG_CODE, field=field)


def load_session(token: str, *, activity: bool = True) -> StaffUser | None:
    """Return the active user behind a session cookie, or None if it was revoked, idle too long or too old.

    `activity=False` for a page's own background poll: it does not keep an unattended session open.
    """
    session = db.session.scalar(
        select(StaffSession).where(
            StaffSession.token_hash == _digest(token), StaffSession.revoked_at.is_(None)
        )
    )
    if session is None or not session.user.active:
        return None
    now = utcnow()
    if _expired(session, now):
        session.revoked_at = now  # refused for good, whatever the cookie says
        db.session.commit()
        return None
    if activity and now - session.last_seen_at >= SEEN_EVERY:
        session.last_seen_at = now
        db.session.commit()
    session.user.session_id = token
    return session.user


def _expired(session: StaffSession, now) -> bool:
    """Whether a session passed the idle or the absolute limit of the configuration."""
    idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    return now - session.last_seen_at > idle or now - session.created_at > _session_max_age()


def _session_max_age() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_MAX_HOURS"])


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
    password = generated_password()
    create(username=username, password=password, role=Role.ADMIN, full_name="Administrator",
           actor="system")
    return password


def generated_password() -> str:
    """A strong password for a staff user who has none to type yet (shown once, never stored)."""
    return secrets.token_urlsafe(15)


def _count_attempt(username: str, *, ip: str | None) -> None:
    """Count one sign-in attempt (a password or a code) of this username and refuse it above the limit.

    The count is one atomic upsert in the database (services.throttle), taken before any check, so
    20 concurrent guesses run at most LOGIN_MAX_FAILURES of them, across workers and restarts. The
    refusal is the same for a username that does not exist.
    """
    config = current_app.config

    def crossing() -> None:  # one audit row when the username crosses the limit, not one per attempt
        audit.record(username[:64] or "-", "auth.login_throttled", ip=ip, outcome="throttled")
        db.session.commit()

    if throttle.over_limit(_throttle_key(username), limit=config["LOGIN_MAX_FAILURES"],
                           window_seconds=config["LOGIN_LOCK_MINUTES"] * 60, crossing=crossing):
        raise Throttled(
            "Too many failed sign-ins for this username. "
            f"Try again in {config['LOGIN_LOCK_MINUTES']} minutes."
        )


def _throttle_key(username: str) -> str:
    return f"login:{username.strip().lower()}"


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
