"""The SIP server's tables: what Kamailio reads of each account, and the registrations it writes.

They are not models of Provisio's database: on SQLite they live in Kamailio's own files (`flask
registrar-init`), on PostgreSQL in Provisio's database (migration 7c1e5a9b3f20). Column names are
the ones Kamailio's auth_db and usrloc modules read (deploy/kamailio/kamailio.cfg).
"""

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, UserDefinedType

# Days from the Julian epoch to 1970-01-01, for the SQLite driver's timestamps.
UNIX_EPOCH_JULIAN_DAY = 2440587.5

metadata = MetaData()


class _JulianDay(UserDefinedType):
    """SQLite's column as Kamailio declares it; its values, Julian-day REALs, pass through as they are."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "DATETIME"  # Kamailio's SQLite driver reads any type naming DATE or TIME as a timestamp


class KamailioTime(TypeDecorator):
    """A timestamp as Kamailio writes it, read as an aware UTC datetime.

    Kamailio's SQLite driver stores a Julian day (a REAL); its PostgreSQL driver a timestamp without
    zone in Kamailio's local time, which is UTC because Provisio starts it with TZ=UTC.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(_JulianDay() if dialect.name == "sqlite" else DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return value.timestamp() / 86400 + UNIX_EPOCH_JULIAN_DAY
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, int | float):
            return datetime.fromtimestamp((value - UNIX_EPOCH_JULIAN_DAY) * 86400, UTC)
        return value.replace(tzinfo=UTC)


# One row per account, written by services/registrar.sync; Kamailio only reads it.
subscriber = Table(
    "sip_subscriber", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False, unique=True),
    Column("username", String(64), nullable=False),
    Column("domain", String(64), nullable=False, server_default=""),
    # MD5(username:realm:password) and MD5(username@realm:realm:password): digest without the password.
    Column("ha1", String(128), nullable=False),
    Column("ha1b", String(128), nullable=False),
    # Integers, not booleans: Kamailio compares the AVPs they load into with 1.
    Column("enabled", SmallInteger, nullable=False),
    Column("refusal", String(64), nullable=False, server_default=""),  # the 403's reason when not enabled
    Column("keepalive", SmallInteger, nullable=False, server_default="0"),
    Column("callerid", String(20), nullable=False),
    Column("secondary_callerid", String(20)),
    # SNOM access rules as CIDR lists, comma-separated, for ipops' is_in_subnet.
    Column("deny", Text, nullable=False, server_default=""),
    Column("permit", Text, nullable=False, server_default=""),
    UniqueConstraint("username", "domain", name="sip_subscriber_account_idx"),
    Index("sip_subscriber_callerid_idx", "callerid"),
    Index("sip_subscriber_secondary_callerid_idx", "secondary_callerid"),
)

# Every virtual number, primary and secondary, and the account it rings (Kamailio's alias_db reads it).
numbers = Table(
    "sip_numbers", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False),
    Column("number", String(20), nullable=False, unique=True),
    Column("username", String(64), nullable=False),
    Column("domain", String(64), nullable=False),  # the realm: alias_db rewrites the call to username@domain
    Index("ix_sip_numbers_account_id", "account_id"),
)

# Kamailio's usrloc table (schema version 9), written by Kamailio only.
location = Table(
    "sip_location", metadata,
    Column("id", Integer, primary_key=True),
    Column("ruid", String(64), nullable=False, server_default=""),
    Column("username", String(64), nullable=False, server_default=""),
    Column("domain", String(64)),
    Column("contact", String(512), nullable=False, server_default=""),
    Column("received", String(128)),
    Column("path", String(512)),
    Column("expires", KamailioTime, nullable=False),
    Column("q", Float, nullable=False, server_default="1.0"),
    Column("callid", String(255), nullable=False, server_default="Default-Call-ID"),
    Column("cseq", Integer, nullable=False, server_default="1"),
    Column("last_modified", KamailioTime, nullable=False),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("cflags", Integer, nullable=False, server_default="0"),
    Column("user_agent", String(255), nullable=False, server_default=""),
    Column("socket", String(64)),
    Column("methods", Integer),
    Column("instance", String(255)),
    Column("reg_id", Integer, nullable=False, server_default="0"),
    Column("server_id", Integer, nullable=False, server_default="0"),
    Column("connection_id", Integer, nullable=False, server_default="0"),
    Column("keepalive", Integer, nullable=False, server_default="0"),
    Column("partition", Integer, nullable=False, server_default="0"),
    UniqueConstraint("ruid", name="sip_location_ruid_idx"),
    Index("sip_location_account_contact_idx", "username", "domain", "contact"),
    Index("sip_location_expires_idx", "expires"),
    Index("sip_location_connection_idx", "server_id", "connection_id"),
)

TABLES = frozenset(metadata.tables)
