"""Every setting Provisio reads, from the environment, with safe defaults."""

import json
import os
import secrets
from datetime import timedelta

from cryptography.fernet import Fernet


def env_bool(name: str, default: bool) -> bool:
    """Read a yes/no environment variable."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_url(url: str | None) -> str | None:
    """Accept the usual postgresql:// form and use the psycopg 3 driver for it."""
    if url and url.split("://", 1)[0] in ("postgres", "postgresql"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Config:
    """Settings for every deployment; secrets come from the environment or the instance file."""

    # "production" refuses to start without secrets or with DEBUG on.
    PROVISIO_ENV = os.environ.get("PROVISIO_ENV", "production")
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # Fernet keys, newest first (comma-separated) so old ciphertexts stay readable.
    ENCRYPTION_KEYS = env_list("PROVISIO_ENCRYPTION_KEYS", "")

    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"))  # None: instance/provisio.db
    # hide_parameters: SQL errors in logs never carry row values. pool_pre_ping is added for
    # server databases only (extensions.init_app): a SQLite file cannot drop the connection.
    SQLALCHEMY_ENGINE_OPTIONS = {"hide_parameters": True}

    PROXY_COUNT = int(os.environ.get("PROXY_COUNT", "0"))  # reverse proxies whose X-Forwarded-* we trust
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    SECURITY_MODELS = env_list("SECURITY_MODELS", "end-to-end,end-to-site")
    USERNAME_LENGTH = int(os.environ.get("USERNAME_LENGTH", "8"))
    GENERATED_PASSWORD_LENGTH = int(os.environ.get("GENERATED_PASSWORD_LENGTH", "24"))
    KEEPALIVE_INTERVAL = int(os.environ.get("KEEPALIVE_INTERVAL", "60"))
    PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "50"))

    # Defaults of the console-editable settings (services/settings.py).
    LINK_MAX_AGE_HOURS = float(os.environ.get("LINK_MAX_AGE_HOURS", "72"))
    ACTIVATION_MIME_TYPE = os.environ.get("ACTIVATION_MIME_TYPE", "application/x-provisio-activation")
    APP_URI_SCHEME = os.environ.get("APP_URI_SCHEME", "provisio")
    DOWNLOAD_URLS: dict[str, str] = json.loads(os.environ.get("DOWNLOAD_URLS", "{}"))
    APPLICATIONS: dict[str, str] = json.loads(os.environ.get("APPLICATIONS", "{}"))
    MAIL_GATEWAY = {
        "mode": os.environ.get("MAIL_MODE", "smtp"),  # "smtp" (relay) or "gmail"
        "host": os.environ.get("MAIL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("MAIL_PORT", "25")),
        "starttls": env_bool("MAIL_STARTTLS", False),
        "username": os.environ.get("MAIL_USERNAME", ""),
        "sender": os.environ.get("MAIL_SENDER", "provisio@localhost"),
    }

    SETTINGS_CACHE_SECONDS = float(os.environ.get("SETTINGS_CACHE_SECONDS", "5"))

    # The default SMS gateway's name and each provider's settings; secrets are set in the console.
    SMS_GATEWAYS: dict = {"gateway": os.environ.get("SMS_GATEWAY", "")}

    MESSAGE_TEMPLATES: dict = {}  # "<kind>/<channel>" -> {"subject", "body"}, edited in the console

    OUTBOX_MAX_ATTEMPTS = int(os.environ.get("OUTBOX_MAX_ATTEMPTS", "5"))
    OUTBOX_BACKOFF_SECONDS = int(os.environ.get("OUTBOX_BACKOFF_SECONDS", "30"))
    OUTBOX_LEASE_SECONDS = int(os.environ.get("OUTBOX_LEASE_SECONDS", "120"))
    # A job renews its lease whenever it reports progress; a worker killed mid-job frees it after this.
    JOB_LEASE_SECONDS = int(os.environ.get("JOB_LEASE_SECONDS", "300"))
    SEND_RATE_LIMIT = int(os.environ.get("SEND_RATE_LIMIT", "5"))
    SEND_RATE_MINUTES = int(os.environ.get("SEND_RATE_MINUTES", "30"))
    # Refused link uses (dead, forged, guessed) one address may make per window before it gets 429.
    LINK_REFUSAL_LIMIT = int(os.environ.get("LINK_REFUSAL_LIMIT", "20"))
    LINK_REFUSAL_WINDOW_SECONDS = int(os.environ.get("LINK_REFUSAL_WINDOW_SECONDS", "900"))

    # argon2id parameters, by name from argon2.profiles; the tests use CHEAPEST.
    PASSWORD_HASH_PROFILE = os.environ.get("PASSWORD_HASH_PROFILE", "RFC_9106_LOW_MEMORY")
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
    LOGIN_LOCK_MINUTES = int(os.environ.get("LOGIN_LOCK_MINUTES", "15"))
    # Roles that must sign in with a TOTP code as well (SPEC §7: admins; add csr,viewer to require it of all).
    TOTP_REQUIRED_ROLES = env_list("TOTP_REQUIRED_ROLES", "admin")
    TOTP_ISSUER = os.environ.get("TOTP_ISSUER", "Provisio")


def load_secrets(app) -> None:
    """Fill missing secrets from instance/secrets.json, creating it (0600) outside production."""
    production = app.config["PROVISIO_ENV"] == "production"
    if production and app.debug:
        raise RuntimeError("Refusing to start in production with DEBUG on.")
    if _missing_secrets(app):
        path = os.path.join(app.instance_path, "secrets.json")
        if not os.path.exists(path) and not production:
            os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
            _write_secrets(path)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                for key, value in json.load(handle).items():
                    app.config[key] = app.config.get(key) or value
    if missing := _missing_secrets(app):
        raise RuntimeError(
            f"Refusing to start without {', '.join(missing)}: set SECRET_KEY and "
            "PROVISIO_ENCRYPTION_KEYS in the environment (see docs/operations.md)."
        )
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
            app.instance_path, "provisio.db"
        )


def _missing_secrets(app) -> list[str]:
    return [key for key in ("SECRET_KEY", "ENCRYPTION_KEYS") if not app.config.get(key)]


def _write_secrets(path: str) -> None:
    """Create the instance secrets file readable by its owner only."""
    secrets_ = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(secrets_, handle)
