"""Flask extensions, created unbound and attached to the app in init_app."""

from collections import namedtuple
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base whose constraints get stable names, so migrations can drop them."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class VaultError(RuntimeError):
    """A stored secret cannot be read: a configuration error; the message names no secret."""


class Vault:
    """Symmetric encryption for secrets that must be recoverable (SIP passwords, gateway keys)."""

    def __init__(self) -> None:
        self._fernet: MultiFernet | None = None

    def init_app(self, app: Flask) -> None:
        """Load the keys; the first encrypts, all of them decrypt (key rotation)."""
        keys = app.config.get("ENCRYPTION_KEYS") or []
        self._fernet = MultiFernet([Fernet(key) for key in keys]) if keys else None
        app.extensions["vault"] = self

    def encrypt(self, plaintext: str) -> str:
        """Encrypt a secret for storage."""
        return self._require().encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt a stored secret; a wrong key is a configuration error, not a user error."""
        try:
            return self._require().decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise VaultError("stored secret cannot be decrypted with the configured keys") from exc

    def _require(self) -> MultiFernet:
        if self._fernet is None:
            raise VaultError("PROVISIO_ENCRYPTION_KEYS is not configured")
        return self._fernet


END_USER_PREFIX = "/m"  # where the end user's link pages are (the mobile blueprint's url_prefix)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its serializer built once per set of keys rather than per request.

    Flask's serializer signs with SECRET_KEY and accepts every SECRET_KEY_FALLBACKS key, so the cache
    is keyed by both: a cookie signed with a retired key stays valid exactly while it is a fallback.

    The end user's link pages (/m/…, blueprints/mobile) have none: their forms carry a token bound to
    the link, nothing there reads a session, so no cookie is read or verified and none is ever set.
    """

    def open_session(self, app: Flask, request):
        if request.path.startswith(END_USER_PREFIX + "/"):
            return self.make_null_session(app)  # Flask saves no null session
        return super().open_session(app, request)

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = app.extensions.get("provisio.session_serializer")
        if cached is None or cached[0] != keys:
            cached = (keys, super().get_signing_serializer(app))
            app.extensions["provisio.session_serializer"] = cached
        return cached[1]


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Unconfigured on purpose: the SMTP gateway builds its own state from the console's settings, but
# Flask-Mail's Message reads app.extensions["mail"] when it is built and sent.
mail = Mail()
vault = Vault()


def _lower(value):
    return value.lower() if isinstance(value, str) else value


def sqlite_pragmas(dbapi_connection, _record) -> None:
    """Make SQLite safe for a web server and a worker sharing one file (on each new connection)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # NORMAL, not FULL: in WAL mode a crash of the process loses nothing, only a power cut may undo
    # the last commits; FULL's fsync per commit cost a third of the activations (docs/operations.md).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # SQLite's lower() folds ASCII only; comparisons are case-insensitive for every letter, as on
    # PostgreSQL. No index may use it: the stock sqlite3 tool's integrity_check would see another
    # lower() and call the index corrupt (the search reads the accounts' *_folded columns instead).
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    # The driver opens a transaction at the first write only; IMMEDIATE takes the write
    # lock at that moment, so two writers queue on busy_timeout instead of deadlocking.
    dbapi_connection.isolation_level = "IMMEDIATE"


def init_app(app: Flask) -> None:
    """Bind every extension to the app."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"],
                                                   "pool_pre_ping": True}
    app.session_interface = SessionInterface()
    if app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_NAME"] == "session":
        # The __Host- prefix: browsers take the cookie only if Secure, host-only and Path=/, so no
        # sibling subdomain or plain-HTTP page can plant or overwrite a staff session.
        app.config.update(SESSION_COOKIE_NAME="__Host-session", SESSION_COOKIE_PATH="/",
                          SESSION_COOKIE_DOMAIN=None)
    db.init_app(app)
    with app.app_context():  # this app's engines only: a process (the test suite) may hold many apps
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", sqlite_pragmas)
    migrate.init_app(app, db, render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    # Flask-WTF 1.3 signs and checks form tokens with one key and ignores SECRET_KEY_FALLBACKS;
    # itsdangerous takes a list (the last key signs, every key verifies), so during a rotation the
    # console's forms keep working, as the sessions do.
    app.config.setdefault("WTF_CSRF_SECRET_KEY",
                          [*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key])
    csrf.init_app(app)
    mail.init_app(app)
    vault.init_app(app)


class DriverStatement:
    """A Core statement for a DriverConnection: compiled once per dialect and set of parameter names."""

    def __init__(self, statement) -> None:
        self.statement = statement
        self._compiled: dict[tuple, tuple] = {}

    def compiled(self, dialect, names: tuple[str, ...]) -> tuple:
        """(SQL, positional parameter order or None, bind processor by name, (row type, row processors))."""
        key = (dialect, names)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._compile(dialect, list(names))
        return found

    def _compile(self, dialect, names: list[str]) -> tuple:
        is_dml = getattr(self.statement, "is_dml", False)
        compiled = self.statement.compile(dialect=dialect, column_keys=names if is_dml else None)
        if compiled.insert_prefetch or compiled.update_prefetch:
            missing = [column.key for column in (*compiled.insert_prefetch, *compiled.update_prefetch)]
            raise ValueError(f"give the values of {missing}: a DriverConnection runs no Python default")
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for bind, name in compiled.bind_names.items()}
        order = list(compiled.positiontup) if compiled.positional else None
        row = None
        if not is_dml:
            columns = list(self.statement.selected_columns)
            row = (namedtuple("Row", [column.key for column in columns]),
                   [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns])
        return str(compiled), order, processors, row


class DriverConnection:
    """A pooled connection's own DBAPI connection, for the end user's hottest paths (the link page, the
    activation): Core's execution of a small statement (cache key, execution context, result object)
    costs more there than the database's work.

    Each DriverStatement is compiled once; its parameters go through their column types' bind processors
    and its rows through their result processors, as in Core, and nothing else runs: no engine event, no
    Python-side column default (a statement that would need one refuses to compile: pass the value),
    no ORM. Use it as a context manager; leaving it rolls back what was not committed.
    """

    def __init__(self, engine) -> None:
        self.dialect = engine.dialect
        self._connection = engine.raw_connection()

    def __enter__(self) -> "DriverConnection":
        return self

    def __exit__(self, *_exc) -> None:
        self._connection.close()  # back to the pool, which rolls back an open transaction

    def execute(self, statement: DriverStatement, parameters: dict[str, Any]) -> int:
        """Run a statement; return the rows it matched (an UPDATE's claim reads it)."""
        cursor = self._run(statement, parameters)[0]
        count = cursor.rowcount
        cursor.close()
        return count

    def one_or_none(self, statement: DriverStatement, parameters: dict[str, Any]):
        """The one row of a SELECT, a named tuple of values typed as Core types them, or None."""
        cursor, (row, processors) = self._run(statement, parameters)
        try:
            found = cursor.fetchone()
        finally:
            cursor.close()
        if found is None:
            return None
        return row._make([process(value) if process else value
                          for value, process in zip(found, processors, strict=True)])

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def _run(self, statement: DriverStatement, parameters: dict[str, Any]):
        sql, order, processors, row = statement.compiled(self.dialect, tuple(parameters))
        values = {name: process(parameters[name]) if process else parameters[name]
                  for name, process in processors.items()}
        cursor = self._connection.cursor()
        cursor.execute(sql, [values[name] for name in order] if order is not None else values)
        return cursor, row
