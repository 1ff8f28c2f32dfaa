"""Console-editable settings, falling back to the environment's defaults."""

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import select

from extensions import db
from models import Setting, StaffUser
from services import app_handoff, audit
from services.errors import Invalid

logger = logging.getLogger(__name__)

_CACHE = "provisio.settings"
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


def checked(changes: dict[str, Any]) -> dict[str, Any]:
    """Return the changes with each ruled value normalised; raise Invalid (naming the field) for a refused one."""
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
