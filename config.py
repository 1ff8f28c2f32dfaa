"""Every setting Provisio reads, from the environment, with safe defaults."""

import base64
import binascii
import contextlib
import json
import os
import secrets
import zlib
from datetime import timedelta

import click
from cryptography.fernet import Fernet
from flask import Response
from sqlalchemy.engine import make_url

from services import app_handoff
from services.errors import Invalid

# The documented values of PROVISIO_ENV; anything else (a typo such as "prod", an empty value)
# refuses to start.
ENVIRONMENTS = ("production", "development", "testing")
# Key rule, outside the test suite: at least 32 bytes, at least 8 different characters, and none of the
# words a placeholder or a hand-made key is made of. Random keys (the commands below) pass it always.
MIN_KEY_BYTES = 32
MIN_DISTINCT = 8
# A repeated pattern ("abcdefgh" four times) compresses to little: random keys of 32 characters or
# more, hex included, never compress below this many bytes.
MIN_COMPRESSED_BYTES = 30
PLACEHOLDER_WORDS = ("change", "replace", "example", "placeholder", "secret", "password", "default",
                     "insecure", "generate", "python", "provisio")
GENERATE_SECRET_KEY = """python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"""
GENERATE_FERNET_KEY = (".venv/bin/python -c "
                       "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")


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

    # One of ENVIRONMENTS. "production" refuses to start without secrets or with DEBUG on.
    PROVISIO_ENV = os.environ.get("PROVISIO_ENV", "production")
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # Retired keys, comma-separated: sessions and form tokens they signed stay valid (docs/operations.md).
    SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", "")
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
    # A staff session ends on the server after this long without a request, or this long after
    # sign-in whatever it does (services.staff.load_session); the cookie's signature expires with it.
    SESSION_IDLE_MINUTES = float(os.environ.get("SESSION_IDLE_MINUTES", "30"))
    SESSION_MAX_HOURS = float(os.environ.get("SESSION_MAX_HOURS", "12"))
    PERMANENT_SESSION_LIFETIME = timedelta(hours=SESSION_MAX_HOURS)
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    SECURITY_MODELS = env_list("SECURITY_MODELS", "end-to-end,end-to-site")
    USERNAME_LENGTH = int(os.environ.get("USERNAME_LENGTH", "8"))
    GENERATED_PASSWORD_LENGTH = int(os.environ.get("GENERATED_PASSWORD_LENGTH", "24"))
    KEEPALIVE_INTERVAL = int(os.environ.get("KEEPALIVE_INTERVAL", "60"))
    PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "50"))

    # The SIP server (Kamailio, deploy/kamailio/): unset, there is none and Connected comes from the app's
    # heartbeat. Kamailio reads these same variables, KEEPALIVE_INTERVAL too (docs/operations.md).
    # Subscribers (Provisio writes) and registrations (Kamailio writes): sqlite:////absolute/path.db or
    # postgres://…, the forms both programs read; on SQLite two files, so that each has one writer.
    REGISTRAR_DATABASE_URL = os.environ.get("REGISTRAR_DATABASE_URL")
    REGISTRAR_LOCATION_URL = os.environ.get("REGISTRAR_LOCATION_URL")
    REGISTRAR_REALM = os.environ.get("REGISTRAR_REALM", "provisio")  # the digest realm
    REGISTRAR_LISTEN = os.environ.get("REGISTRAR_LISTEN", "udp:127.0.0.1:5060 tcp:127.0.0.1:5060")
    REGISTRAR_CTL = os.environ.get("REGISTRAR_CTL", "unix:/run/provisio-sip/ctl")  # Kamailio's control socket
    REGISTRAR_MIN_EXPIRES = int(os.environ.get("REGISTRAR_MIN_EXPIRES", "60"))  # shortest registration, s
    # The worker turns registered accounts Connected every REGISTRAR_POLL_SECONDS, and writes every
    # account to the SIP server again every REGISTRAR_RESYNC_SECONDS (it catches up after an outage).
    REGISTRAR_POLL_SECONDS = float(os.environ.get("REGISTRAR_POLL_SECONDS", "2"))
    REGISTRAR_RESYNC_SECONDS = float(os.environ.get("REGISTRAR_RESYNC_SECONDS", "3600"))

    # Defaults of the console-editable settings (services/settings.py).
    LINK_MAX_AGE_HOURS = float(os.environ.get("LINK_MAX_AGE_HOURS", "72"))
    ACTIVATION_MIME_TYPE = os.environ.get("ACTIVATION_MIME_TYPE", "application/x-provisio-activation")
    APP_URI_SCHEME = os.environ.get("APP_URI_SCHEME", "provisio")
    DOWNLOAD_URLS: dict[str, str] = json.loads(os.environ.get("DOWNLOAD_URLS", "{}"))
    APPLICATIONS: dict[str, str] = json.loads(os.environ.get("APPLICATIONS", "{}"))
    # Development only: where tools/mail_catcher.py keeps the e-mail `make run` sends (Caught e-mail page).
    CAUGHT_MAIL_DIR = os.environ.get("CAUGHT_MAIL_DIR") or None
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
    # A message a provider keeps answering "slow down" is given up this long after it was queued.
    OUTBOX_THROTTLED_HOURS = float(os.environ.get("OUTBOX_THROTTLED_HOURS", "24"))
    # A job renews its lease whenever it reports progress; a worker killed mid-job frees it after this.
    JOB_LEASE_SECONDS = int(os.environ.get("JOB_LEASE_SECONDS", "300"))
    # The worker notes it is alive every WORKER_BEAT_SECONDS; /readyz calls it stale after
    # WORKER_STALE_SECONDS, and the outbox stale when a message has waited OUTBOX_STALE_SECONDS.
    WORKER_BEAT_SECONDS = float(os.environ.get("WORKER_BEAT_SECONDS", "15"))
    WORKER_STALE_SECONDS = float(os.environ.get("WORKER_STALE_SECONDS", "60"))
    OUTBOX_STALE_SECONDS = float(os.environ.get("OUTBOX_STALE_SECONDS", "600"))
    # /metrics: with a token, for a bearer of it; without one, for this machine only (never through a proxy).
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")  # "text" or "json": one line per request either way
    SEND_RATE_LIMIT = int(os.environ.get("SEND_RATE_LIMIT", "5"))
    SEND_RATE_MINUTES = int(os.environ.get("SEND_RATE_MINUTES", "30"))
    # Failed Snom settings fetches (unknown secret, wrong MAC, refusals) allowed per client address
    # and window; beyond them the address gets 429 until the window ends.
    SNOM_GUESS_LIMIT = int(os.environ.get("SNOM_GUESS_LIMIT", "20"))
    SNOM_GUESS_WINDOW_SECONDS = int(os.environ.get("SNOM_GUESS_WINDOW_SECONDS", "600"))
    # Refused link uses (dead, forged, guessed) one address may make per window before it gets 429.
    LINK_REFUSAL_LIMIT = int(os.environ.get("LINK_REFUSAL_LIMIT", "20"))
    LINK_REFUSAL_WINDOW_SECONDS = int(os.environ.get("LINK_REFUSAL_WINDOW_SECONDS", "900"))

    # argon2id parameters, by name from argon2.profiles; the tests use CHEAPEST.
    PASSWORD_HASH_PROFILE = os.environ.get("PASSWORD_HASH_PROFILE", "RFC_9106_LOW_MEMORY")
    LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", "5"))
    LOGIN_LOCK_MINUTES = int(os.environ.get("LOGIN_LOCK_MINUTES", "15"))
    # Roles that must sign in with a TOTP code as well: every role by default (a CSR sends links that
    # yield credentials); an operator may lower it, e.g. TOTP_REQUIRED_ROLES=admin.
    TOTP_REQUIRED_ROLES = env_list("TOTP_REQUIRED_ROLES", "admin,csr,viewer")
    TOTP_ISSUER = os.environ.get("TOTP_ISSUER", "Provisio")


class ConfigError(click.ClickException, RuntimeError):
    """The configuration is unsafe or incomplete; the message says what to set.

    A ClickException, so that `flask` commands print the message alone (and exit 1) rather than a
    traceback; gunicorn logs it as the reason the worker did not boot.
    """


NOT_SET_UP = ("Provisio has no SECRET_KEY and PROVISIO_ENCRYPTION_KEYS yet: run `make setup` (or "
              "`flask --app app setup`), which writes them into instance/secrets.json, then start it again.")
SECRETS_FILE = "secrets.json"


def load_secrets(app) -> None:
    """Check the configuration and fill missing secrets from instance/secrets.json (`flask setup` writes it).

    Reads only. A development app that finds its secrets nowhere still starts, for `flask setup` to
    write them; until then it answers every request with NOT_SET_UP and has no other command.
    """
    environment = app.config["PROVISIO_ENV"]
    if environment not in ENVIRONMENTS:
        raise ConfigError(
            f"Refusing to start with PROVISIO_ENV={environment!r}: use one of {', '.join(ENVIRONMENTS)} "
            "(unset means production)."
        )
    if environment == "production" and app.debug:
        raise ConfigError("Refusing to start in production with DEBUG on.")
    if environment == "production" and app.config.get("CAUGHT_MAIL_DIR"):
        raise ConfigError("Refusing to start in production with CAUGHT_MAIL_DIR set: e-mail is for the end "
                          "users, not for a folder (tools/mail_catcher.py is for development).")
    if missing_secrets(app):
        _read_instance_secrets(app)
    if missing := missing_secrets(app):
        if environment != "development":
            raise ConfigError(
                f"Refusing to start without {', '.join(missing)}: set SECRET_KEY and "
                "PROVISIO_ENCRYPTION_KEYS in the environment (see docs/operations.md)."
            )
        app.logger.warning(NOT_SET_UP)  # what `flask run` and every command print first
        app.before_request(_not_set_up)
    else:
        # The suite's apps (TESTING, from the config mapping) run on fixed, short keys; any other app
        # may hold real accounts, whatever PROVISIO_ENV says.
        strict = not app.config.get("TESTING")
        _check_secret_keys(app, strict=strict)
        _check_encryption_keys(app.config["ENCRYPTION_KEYS"], strict=strict)
    _check_app_handoff(app)
    _check_registrar(app.config)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = _instance_database(app)


def _not_set_up() -> Response:
    """Answer a request to an app still without its secrets: what to run."""
    return Response(NOT_SET_UP, status=503, mimetype="text/plain")


def _instance_database(app) -> str:
    return "sqlite:///" + os.path.join(app.instance_path, "provisio.db")


def _read_instance_secrets(app) -> None:
    """Fill missing secrets from instance/secrets.json, if there is one."""
    path = os.path.join(app.instance_path, SECRETS_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for key, value in json.load(handle).items():
                app.config[key] = app.config.get(key) or value


def write_instance(app) -> str | None:
    """Make what the app keeps in its instance folder: the folder, the secrets if it has none yet, and
    a SQLite database file not there yet, each readable by the service's user alone.

    For `flask setup` alone (the factory only reads). Only a development app can be without its
    secrets here: any other refused to start. Returns the path of the secrets file it wrote, if any.
    """
    missing = missing_secrets(app)
    if missing or app.config["SQLALCHEMY_DATABASE_URI"] == _instance_database(app):
        os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    _create_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
    if not missing:
        return None
    path = os.path.join(app.instance_path, SECRETS_FILE)
    _write_secrets(path)
    return path


def _create_sqlite_file(url: str) -> None:
    """Create a SQLite database that does not exist yet as an empty file of mode 0600.

    SQLite would create it with the umask of whoever runs `flask setup` (world-readable under the
    usual 022), and gives its -wal and -shm files the database file's mode.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    # There already, or no folder (SQLite's own error says so then).
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(parsed.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def missing_secrets(app) -> list[str]:
    """The secrets the app was given neither in its environment nor in instance/secrets.json."""
    return [key for key in ("SECRET_KEY", "ENCRYPTION_KEYS") if not app.config.get(key)]


def _check_secret_keys(app, *, strict: bool) -> None:
    """Refuse a SECRET_KEY or fallback that is short, repetitive or a placeholder (the key mints links)."""
    fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or []
    if isinstance(fallbacks, str):
        fallbacks = [item.strip() for item in fallbacks.split(",") if item.strip()]
    app.config["SECRET_KEY_FALLBACKS"] = list(fallbacks)
    if not strict:
        return
    named = [("SECRET_KEY", app.config["SECRET_KEY"])]
    named += [(f"SECRET_KEY_FALLBACKS (key {n} of {len(fallbacks)})", key)
              for n, key in enumerate(fallbacks, 1)]
    for name, key in named:
        if problem := key_problem(key):
            raise ConfigError(f"Refusing to start: {name} {problem}. "
                              f"Generate a key with: {GENERATE_SECRET_KEY}")


def key_problem(key: str | bytes) -> str | None:
    """Say why a signing key is unfit (never quoting it), or None for a good one."""
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if len(raw) < MIN_KEY_BYTES:
        unit = "byte" if len(raw) == 1 else "bytes"
        return f"is too short ({len(raw)} {unit}; at least {MIN_KEY_BYTES} random bytes needed)"
    if len(set(raw)) < MIN_DISTINCT:
        return f"has fewer than {MIN_DISTINCT} different characters; it is not random"
    if len(zlib.compress(raw, 9)) < MIN_COMPRESSED_BYTES:
        return "repeats a pattern; it is not random"
    folded = raw.decode(errors="replace").lower()
    if word := next((word for word in PLACEHOLDER_WORDS if word in folded), None):
        return f'looks like a placeholder (it contains "{word}"), not a random key'
    return None


def _check_encryption_keys(keys, *, strict: bool) -> None:
    """Refuse anything but Fernet keys (32 url-safe base64 bytes) with a message, not
    cryptography's traceback."""
    keys = [keys] if isinstance(keys, str | bytes) else list(keys)
    for number, key in enumerate(keys, 1):
        name = f"PROVISIO_ENCRYPTION_KEYS (key {number} of {len(keys)})"
        try:
            Fernet(key)
            raw = base64.urlsafe_b64decode(key)
        except (TypeError, ValueError, binascii.Error):
            raise ConfigError(
                f"Refusing to start: {name} is not a Fernet key (44 characters of url-safe base64 "
                f"encoding 32 bytes). Generate one with: {GENERATE_FERNET_KEY}"
            ) from None
        if strict and len(set(raw)) < MIN_DISTINCT:
            raise ConfigError(f"Refusing to start: {name} is not random. "
                              f"Generate one with: {GENERATE_FERNET_KEY}")


def _check_app_handoff(app) -> None:
    """Refuse an ACTIVATION_MIME_TYPE or APP_URI_SCHEME that a browser would render or run itself."""
    for name, check in (("ACTIVATION_MIME_TYPE", app_handoff.check_mime_type),
                        ("APP_URI_SCHEME", app_handoff.check_uri_scheme)):
        try:
            app.config[name] = check(app.config[name])
        except Invalid as exc:
            raise ConfigError(f"Refusing to start with {name}={app.config[name]!r}: {exc.message}") from None


def _check_registrar(config) -> None:
    """Refuse registrar database URLs that Kamailio, which reads the same variables, would read otherwise."""
    if not config.get("REGISTRAR_DATABASE_URL"):
        return
    for name in ("REGISTRAR_DATABASE_URL", "REGISTRAR_LOCATION_URL"):
        url = config.get(name) or ""
        scheme, _, rest = url.partition("://")
        if scheme not in ("sqlite", "postgres") or (scheme == "sqlite" and not rest.startswith("//")):
            raise ConfigError(
                f"Refusing to start with {name}={url.split('@')[-1]!r}: set it to "
                "sqlite:////absolute/path.db or postgres://user:password@host/database (Kamailio reads it "
                "too, and knows no other form)."
            )


def _write_secrets(path: str) -> None:
    """Create the instance secrets file readable by its owner only."""
    secrets_ = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(secrets_, handle)
