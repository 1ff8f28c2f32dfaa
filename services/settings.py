"""Console-editable settings, falling back to the environment's defaults."""

from typing import Any

from flask import current_app
from sqlalchemy import select

from extensions import db
from models import Setting, StaffUser
from services import audit

# key -> the Config name that supplies its default.
DEFAULTS = {
    "public_base_url": "PUBLIC_BASE_URL",
    "link_max_age_hours": "LINK_MAX_AGE_HOURS",
    "activation_mime_type": "ACTIVATION_MIME_TYPE",
    "app_uri_scheme": "APP_URI_SCHEME",
    "download_urls": "DOWNLOAD_URLS",
    "applications": "APPLICATIONS",
    "mail": "MAIL_GATEWAY",
    "keepalive_interval": "KEEPALIVE_INTERVAL",
}


def get_all() -> dict[str, Any]:
    """Return every setting, stored values over defaults, in one query."""
    values = {key: current_app.config[name] for key, name in DEFAULTS.items()}
    values.update({row.key: row.value for row in db.session.scalars(select(Setting))})
    return values


def get(key: str) -> Any:
    """Return one setting."""
    row = db.session.get(Setting, key)
    return row.value if row is not None else current_app.config[DEFAULTS[key]]


def save(changes: dict[str, Any], *, actor: StaffUser | str) -> None:
    """Store changed settings in one transaction; the audit row names the keys, not the values."""
    for key, value in changes.items():
        if key not in DEFAULTS:
            raise KeyError(key)
        row = db.session.get(Setting, key) or Setting(key=key)
        row.value = value
        db.session.add(row)
    audit.record(actor, "settings.update", keys=sorted(changes))
    db.session.commit()
