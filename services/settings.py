"""Console-editable settings, falling back to the environment's defaults; the one home of gateway secrets.

Each gateway declares the settings it reads (`settings_fields`, see gateways/base.py). Its secrets are
stored encrypted as `<key>_encrypted`, a blank one keeps the stored secret, and only `for_gateways`
decrypts them, for the gateways alone: never a page, an audit row or a log line.
"""

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import current_app
from sqlalchemy import select

from extensions import db, vault
from gateways import SMS_GATEWAYS, SmtpGateway
from gateways.base import SettingField
from models import Setting, StaffUser
from services import app_handoff, audit
from services.errors import Invalid

logger = logging.getLogger(__name__)

_CACHE = "provisio.settings"
SEALED = "_encrypted"  # a gateway's secret `key` is stored as `key_encrypted`
# key -> the Config name that supplies its default.
DEFAULTS = {
    "public_base_url": "PUBLIC_BASE_URL",
    "link_max_age_hours": "LINK_MAX_AGE_HOURS",
    "activation_mime_type": "ACTIVATION_MIME_TYPE",
    "app_uri_scheme": "APP_URI_SCHEME",
    "download_urls": "DOWNLOAD_URLS",
    "applications": "APPLICATIONS",
    "mail": "MAIL_GATEWAY",
    "sms": "SMS_GATEWAYS",
    "templates": "MESSAGE_TEMPLATES",
    "keepalive_interval": "KEEPALIVE_INTERVAL",
}
# key -> the rule its value must pass, whoever writes it (console form, script, an older release's row).
RULES: dict[str, Callable[[Any], Any]] = {
    "activation_mime_type": app_handoff.check_mime_type,
    "app_uri_scheme": app_handoff.check_uri_scheme,
}


def get_all() -> dict[str, Any]:
    """Return every setting, stored values over defaults.

    The landing page reads them on every request, so each process keeps them for
    SETTINGS_CACHE_SECONDS; a save clears this process's copy at once, others follow within that time.
    """
    cached = current_app.extensions.get(_CACHE)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    values = {key: current_app.config[name] for key, name in DEFAULTS.items()}
    values.update({row.key: row.value for row in db.session.scalars(select(Setting))})
    _drop_refused(values)
    current_app.extensions[_CACHE] = (time.monotonic() + current_app.config["SETTINGS_CACHE_SECONDS"], values)
    return values


def get(key: str) -> Any:
    """Return one setting."""
    return get_all()[key]


def save(changes: dict[str, Any], *, actor: StaffUser | str) -> None:
    """Store changed settings in one transaction; the audit row names the keys, not the values."""
    changes = checked(changes)
    for key, value in changes.items():
        row = db.session.get(Setting, key) or Setting(key=key)
        row.value = value
        db.session.add(row)
    audit.record(actor, "settings.update", keys=sorted(changes))
    db.session.commit()
    current_app.extensions.pop(_CACHE, None)


def save_typed(changes: dict[str, Any], *, actor: StaffUser | str) -> None:
    """Store settings as an admin typed them: each gateway's secrets encrypted, a blank secret keeping the
    stored one, a blank value left out (the gateway's own default applies).

    `changes["mail"]` holds the e-mail gateway's values, `changes["sms"]` the default SMS gateway's name
    and each provider's values.
    """
    stored, changes = get_all(), dict(changes)
    if "mail" in changes:
        changes["mail"] = _sealed(changes["mail"], stored["mail"], SmtpGateway.settings_fields)
    if "sms" in changes:
        typed = changes["sms"]
        sms = {"gateway": typed.get("gateway", "")}
        for name, gateway in SMS_GATEWAYS.items():
            # Pasted from a provider's portal: surrounding spaces are never part of a key or a sender.
            values = {key: value.strip() if isinstance(value, str) else value
                      for key, value in (typed.get(name) or {}).items()}
            sms[name] = _sealed(values, stored["sms"].get(name) or {}, gateway.settings_fields)
        changes["sms"] = sms
    save(changes, actor=actor)


def _sealed(typed: Mapping[str, Any], stored: Mapping[str, Any],
            fields: Sequence[SettingField]) -> dict[str, Any]:
    """One gateway's section as it is stored, from what an admin typed and what is stored now."""
    section = {}
    for field in fields:
        value, sealed_key = typed.get(field.key), field.key + SEALED
        if field.secret and value:
            section[sealed_key] = vault.encrypt(value)
        elif field.secret and stored.get(sealed_key):
            section[sealed_key] = stored[sealed_key]
        elif not field.secret and value not in (None, ""):
            section[field.key] = _provider_checked(field, value)
    return section


def _provider_checked(field: SettingField, value: Any) -> Any:
    """Apply a gateway's own rule to a value (the form applied it too; a script has not)."""
    if field.check is None or not isinstance(value, str):
        return value
    try:
        return field.check(value)
    except ValueError as exc:
        raise Invalid(f"{field.label}: {exc}") from None


def shown(section: Mapping[str, Any], fields: Sequence[SettingField]) -> dict[str, Any]:
    """One gateway's stored values a form may show again: every declared one but its secrets."""
    return {field.key: section.get(field.key) for field in fields if not field.secret}


def has_secret(section: Mapping[str, Any], key: str) -> bool:
    """Whether one gateway's section keeps a secret under this key (a form may say so, never show it)."""
    return bool(section.get(key + SEALED))


def for_gateways() -> dict[str, Any]:
    """Every setting with each gateway's stored secrets decrypted, for the gateways only.

    Raises VaultError (naming no secret) when a stored secret was saved under a key no longer configured.
    """
    values = dict(get_all())  # a copy: the cached settings stay as stored
    values["mail"] = _opened(values["mail"])
    values["sms"] = {key: _opened(value) if isinstance(value, dict) else value
                     for key, value in values["sms"].items()}
    return values


def _opened(section: Mapping[str, Any]) -> dict[str, Any]:
    """A gateway's section with every stored secret decrypted, under its plain key."""
    return {key.removesuffix(SEALED): vault.decrypt(value) if key.endswith(SEALED) else value
            for key, value in section.items()}


def checked(changes: dict[str, Any]) -> dict[str, Any]:
    """Return the changes with each ruled value normalised.

    Raise Invalid (naming the field) for a refused one.
    """
    unknown = set(changes) - set(DEFAULTS)
    if unknown:
        raise KeyError(sorted(unknown)[0])
    return {key: RULES[key](value) if key in RULES else value for key, value in changes.items()}


def _drop_refused(values: dict[str, Any]) -> None:
    """Replace a stored value today's rules refuse by the environment's default (checked at startup)."""
    for key, rule in RULES.items():
        try:
            values[key] = rule(values[key])
        except Invalid as exc:
            logger.warning("Ignoring the stored setting %s (%s); using %s.", key, exc.message, DEFAULTS[key])
            values[key] = current_app.config[DEFAULTS[key]]
