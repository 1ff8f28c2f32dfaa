"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import secrets
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from app import create_app
from extensions import db
from models import registrar
from models.account import include_in_autogenerate
from services.imports import Phase
from tests.support import make_config


def schema_diff(app) -> list:
    """Return what autogenerate would still write to make the database match the models."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_object": include_in_autogenerate})
        return compare_metadata(context, db.metadata)


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """An empty database of the same kind as the test database, dropped afterwards."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    schema = f"scratch_{secrets.token_hex(4)}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        # Everything the migrations create lands in the scratch schema, found first on the path.
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture
def scratch_app(scratch_url):
    app = create_app(make_config(scratch_url))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_models_match_the_migrated_database(app):
    assert schema_diff(app) == []


def test_flask_db_check_finds_nothing_to_generate(app):
    # `db check` exits 1 when autogenerate would write anything. (Its "no new operations"
    # line goes to the stdout alembic saw at import, which the CLI runner cannot capture.)
    result = app.test_cli_runner().invoke(args=["db", "check"])

    assert result.exit_code == 0, result.output


def test_migrations_have_a_single_head(app):
    with app.app_context():
        script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())

    assert len(script.get_heads()) == 1


def test_migrations_downgrade_to_nothing_and_upgrade_again(scratch_app):
    with scratch_app.app_context():
        assert inspect(db.engine).get_table_names() == []  # never the shared test database
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        # The SIP server's tables are Provisio's on PostgreSQL only; on SQLite Kamailio has its own files.
        sip_tables = registrar.TABLES if db.engine.dialect.name == "postgresql" else set()

    assert tables == {table.name for table in db.metadata.sorted_tables} | {"alembic_version"} | sip_tables
    assert schema_diff(scratch_app) == []


def test_imports_stored_with_the_older_sentence_phases_move_to_the_phase_names_and_back(scratch_app):
    sentences = {"Checked": Phase.CHECKED, "Checking rows": Phase.CHECKING, "Imported": Phase.IMPORTED,
                 "Confirmed, waiting for the worker to write the accounts": Phase.CONFIRMED}
    jobs = sa.table("jobs", *(sa.column(name) for name in ("id", "kind", "state", "total", "done", "phase",
                                                           "attempts")),
                    *(sa.column(name, sa.DateTime(timezone=True)) for name in ("created_at", "updated_at")),
                    sa.column("payload", sa.JSON), sa.column("result", sa.JSON))
    now = datetime.now(UTC)
    # A bulk job's phase is its own: it stays.
    stored = [("import", sentence) for sentence in sentences] + [("bulk", "Checked")]
    with scratch_app.app_context():
        upgrade(revision="251c23997868")
        with db.engine.begin() as connection:
            connection.execute(jobs.insert(), [
                {"kind": kind, "state": "done", "total": 0, "done": 0, "phase": phase, "attempts": 0,
                 "created_at": now, "updated_at": now, "payload": {}, "result": {}}
                for kind, phase in stored])

        def phases() -> list[str]:
            with db.engine.connect() as connection:
                return list(connection.scalars(sa.select(jobs.c.phase).order_by(jobs.c.id)))

        upgrade()
        upgraded = phases()
        downgrade(revision="251c23997868")
        downgraded = phases()
        upgrade()

    assert upgraded == [*sentences.values(), "Checked"]
    assert downgraded == [phase for _, phase in stored]


def test_the_words_revision_fills_the_words_of_existing_accounts(scratch_app):
    from sqlalchemy import insert, select

    from models import Account, AccountTerm, Group

    with scratch_app.app_context():
        upgrade(revision="251c23997868")  # a revision before account_terms
        group_id = db.session.execute(insert(Group.__table__).values(name="Old").returning(Group.id)).scalar()
        db.session.execute(insert(Account.__table__), [
            {"username": "old1", "callerid": "+41790000001", "password_encrypted": "x", "group_id": group_id,
             "owner": "Anna Meier-Huber", "description": "Sales desk"},
            {"username": "old2", "callerid": "+41790000002", "password_encrypted": "x", "group_id": group_id,
             "owner": "", "description": ""},
        ])
        db.session.commit()
        upgrade()
        terms = select(Account.username, AccountTerm.field, AccountTerm.position, AccountTerm.term)
        rows = db.session.execute(terms.join(AccountTerm, AccountTerm.account_id == Account.id)
                                  .order_by(AccountTerm.field, AccountTerm.position)).all()
        db.session.remove()

    assert [tuple(row) for row in rows] == [
        ("old1", "description", 0, "sales"), ("old1", "description", 1, "desk"),
        ("old1", "owner", 0, "anna"), ("old1", "owner", 1, "meier"), ("old1", "owner", 2, "huber")]


def only_sip_tables(obj, name, type_, reflected, compare_to) -> bool:
    return type_ != "table" or name in registrar.TABLES


def test_migrations_build_the_sip_tables_on_postgresql_only(app):
    with app.app_context(), db.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if connection.dialect.name != "postgresql":
            assert not tables & registrar.TABLES
            return
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_object": only_sip_tables})
        diff = compare_metadata(context, registrar.metadata)

    assert diff == []


def test_a_profile_host_stored_with_its_port_is_split_into_host_and_port_and_joined_back(scratch_app):
    profiles = sa.table("profiles", *(sa.column(name) for name in ("id", "name", "description", "sip_host",
                                                                   "provisioning_host", "transport",
                                                                   "refetch_hours")),
                        sa.column("options", sa.JSON),
                        *(sa.column(name, sa.DateTime(timezone=True))
                          for name in ("created_at", "updated_at")))
    now = datetime.now(UTC)
    with scratch_app.app_context():
        upgrade(revision="7c1e5a9b3f20")  # the revision before profiles.sip_port
        with db.engine.begin() as connection:
            connection.execute(profiles.insert(), [
                {"name": name, "description": "", "sip_host": host, "provisioning_host": "prov.example.net",
                 "transport": "tls", "refetch_hours": 24, "options": {}, "created_at": now, "updated_at": now}
                for name, host in (("Ported", "sip.example.net:5070"), ("Plain", "sip.example.org"))])

        upgrade()
        with db.engine.connect() as connection:
            upgraded = connection.execute(
                sa.text("SELECT sip_host, sip_port FROM profiles ORDER BY id")).all()
        downgrade(revision="7c1e5a9b3f20")
        with db.engine.connect() as connection:
            downgraded = connection.execute(
                sa.text("SELECT sip_host FROM profiles ORDER BY id")).scalars().all()
        upgrade()

    assert [tuple(row) for row in upgraded] == [("sip.example.net", 5070), ("sip.example.org", None)]
    assert downgraded == ["sip.example.net:5070", "sip.example.org"]
