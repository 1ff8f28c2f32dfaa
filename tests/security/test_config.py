"""Secrets and configuration, probed as a careless operator or an attacker who read the example would.

A weak or placeholder SECRET_KEY lets anyone sign sessions and links, so production refuses it;
a misspelt PROVISIO_ENV must not quietly run as development; a retired key keeps working only while
it is listed in SECRET_KEY_FALLBACKS; the activation MIME type and the app's URI scheme can never be
ones a browser renders or runs itself.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app import create_app
from extensions import db
from models import Setting
from services import receipts, settings
from services.errors import Invalid
from tests.support import KEY, Client, make_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "provisio.env.example"
# The secrets a restart reads from its environment; make_config's fixed values must not mask them.
FROM_ENVIRONMENT = ("PROVISIO_ENV", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "PROVISIO_ENCRYPTION_KEYS")
KEY_A = "Vt3q8ZKxN1bR7mWp2cYfH5sLd9gJ0uEaQ4iOkT6n"
KEY_B = "gP5wX2mQ9rZ7cV1kN8tB4yH6jL0fD3sAeU5oRiW2"
KEY_C = "Hn4Lq7Xe2Wk9Pz5Rb1Mc8Tv3Yd6Gf0Js4Ua7Io2K"
WEAK_KEYS = {
    "one letter": "x",
    "31 random bytes": "Qm7Zr2Xv9Kp4Wn8Tb3Yc6Hd1Jf5Lg0s",
    "the old example's placeholder":
        'change-me-python3 -c "import secrets; print(secrets.token_urlsafe(48))"',
    "changeme, made long": "changeme-changeme-changeme-changeme",
    "a word and digits": "mysecretkeyforprovisio2026production",
    "one character repeated": "x" * 64,
    "two characters repeated": "ab" * 32,
    "eight letters, four times": "abcdefgh" * 4,
    "the ten digits, four times": "0123456789" * 4,
}


def production(**overrides) -> dict:
    """A production configuration with good secrets, over an in-memory database."""
    return {"PROVISIO_ENV": "production", "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "SECRET_KEY": KEY_A, "ENCRYPTION_KEYS": [KEY], **overrides}


@pytest.fixture
def empty_instance(tmp_path, monkeypatch):
    """Point every new app's instance folder at an empty temporary directory."""
    from flask import Flask

    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    return tmp_path


@pytest.fixture
def restart(app, database_url, monkeypatch, empty_instance):
    """Start the app again as a new process over the same database would, reading Config from `env`."""
    started = []

    def start(**env: str):
        for name in FROM_ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # config.py reads the environment when imported: import a fresh copy of it, as a restart does.
        spec = importlib.util.spec_from_file_location("config_after_restart", ROOT / "config.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        monkeypatch.setattr("app.Config", module.Config)
        kept = {key: value for key, value in make_config(database_url).items()
                if key not in ("PROVISIO_ENV", "SECRET_KEY", "ENCRYPTION_KEYS", "TESTING")}
        started.append(create_app(kept))
        return started[-1]

    yield start
    for started_app in started:
        with started_app.app_context():
            db.engine.dispose()


def flask_command(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run `flask --app app …` as the worker's systemd unit does, with only the given settings."""
    clean = {key: value for key, value in os.environ.items()
             if key not in (*FROM_ENVIRONMENT, "DATABASE_URL", "FLASK_DEBUG")}
    clean.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'provisio.db'}", **env})
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120)


def session_cookie(browser: Client, app) -> str:
    return browser.http.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


def resigned(cookie: str, signed_by, for_app) -> str:
    """The same session, signed with another app's current key (to test form tokens on their own)."""
    data = signed_by.session_interface.get_signing_serializer(signed_by).loads(cookie)
    return for_app.session_interface.get_signing_serializer(for_app).dumps(data)


def settings_form(**overrides: str) -> dict:
    """Every field of the admin's settings form, as the page posts it."""
    return {"public_base_url": "https://activate.example.test", "link_max_age_hours": "72",
            "activation_mime_type": "application/x-provisio-activation", "app_uri_scheme": "provisio",
            "applications": "{}", "mail_mode": "smtp", "mail_host": "127.0.0.1", "mail_port": "25",
            "mail_sender": "provisio@example.test", "sms_gateway": "", **overrides}


# 1. Weak secrets

@pytest.mark.parametrize("key", WEAK_KEYS.values(), ids=WEAK_KEYS.keys())
def test_production_refuses_a_short_repetitive_or_placeholder_secret_key(empty_instance, key):
    refusal = r"Refusing to start: SECRET_KEY .*secrets\.token_urlsafe"
    with pytest.raises(RuntimeError, match=refusal) as refused:
        create_app(production(SECRET_KEY=key))

    if len(key) > 1:
        assert key not in str(refused.value)  # the message explains, it never repeats the key


def test_development_refuses_a_weak_secret_key_it_is_given(empty_instance):
    with pytest.raises(RuntimeError,
                       match=r"SECRET_KEY is too short \(1 byte; at least 32 random bytes needed\)"):
        create_app(production(PROVISIO_ENV="development", SECRET_KEY="x"))


@pytest.mark.parametrize("environment", ["production", "development", "testing"])
@pytest.mark.parametrize("keys", [["change-me"], [KEY, "x" * 44], [KEY[:-2]]],
                         ids=["placeholder", "second key not base64 of 32 bytes", "truncated"])
def test_an_encryption_key_that_is_not_a_fernet_key_refuses_to_start_with_a_message(
    empty_instance, environment, keys
):
    with pytest.raises(RuntimeError, match=r"PROVISIO_ENCRYPTION_KEYS \(key \d of \d\) is not a Fernet key"):
        create_app(production(PROVISIO_ENV=environment, ENCRYPTION_KEYS=keys))


def test_production_refuses_a_fernet_key_of_zero_bytes(empty_instance):
    zeros = "A" * 43 + "="  # a valid Fernet key: 32 zero bytes

    with pytest.raises(RuntimeError, match="PROVISIO_ENCRYPTION_KEYS .* is not random"):
        create_app(production(ENCRYPTION_KEYS=[zeros]))


def test_a_flask_command_refuses_a_weak_key_with_the_message_alone(tmp_path):
    # PROVISIO_ENV unset: production, as deployed.
    result = flask_command(tmp_path, "setup", SECRET_KEY="x", PROVISIO_ENCRYPTION_KEYS=KEY)

    assert result.returncode == 1
    assert "Error: Refusing to start: SECRET_KEY is too short (1 byte;" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "provisio.db").exists()  # nothing was migrated or created


def test_testing_set_in_the_environment_does_not_lift_the_key_rule(tmp_path):
    # Only the suite's own apps (TESTING=True, from its config mapping) run on weak keys.
    result = flask_command(tmp_path, "setup", PROVISIO_ENV="testing", SECRET_KEY="x",
                           PROVISIO_ENCRYPTION_KEYS=KEY)

    assert result.returncode == 1
    assert "Error: Refusing to start: SECRET_KEY is too short (1 byte;" in result.stderr
    assert not (tmp_path / "provisio.db").exists()


def test_testing_writes_no_instance_secrets(empty_instance):
    with pytest.raises(RuntimeError, match="Refusing to start without SECRET_KEY, ENCRYPTION_KEYS"):
        create_app({"PROVISIO_ENV": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "SECRET_KEY": None, "ENCRYPTION_KEYS": []})

    assert list(empty_instance.iterdir()) == []  # generated secrets are for development only


# 2. PROVISIO_ENV

@pytest.mark.parametrize("environment", ["prod", "", "Production", "dev", "staging"])
def test_an_undocumented_environment_refuses_to_start_and_writes_no_secrets(empty_instance, environment):
    with pytest.raises(RuntimeError, match="use one of production, development, testing"):
        create_app({"PROVISIO_ENV": environment, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                    "SECRET_KEY": None, "ENCRYPTION_KEYS": []})

    assert list(empty_instance.iterdir()) == []  # no instance/secrets.json, nothing at all


def test_a_flask_command_refuses_an_undocumented_environment(tmp_path):
    result = flask_command(tmp_path, "setup", PROVISIO_ENV="prod", SECRET_KEY=KEY_A,
                           PROVISIO_ENCRYPTION_KEYS=KEY)

    assert result.returncode == 1
    assert "Error: Refusing to start with PROVISIO_ENV='prod': use one of production, development, testing" \
        in result.stderr
    assert not (tmp_path / "provisio.db").exists()


# 3. Key rotation

def test_a_session_signed_with_a_retired_key_lasts_while_the_key_is_a_fallback(restart, admin_id):
    before = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_A, PROVISIO_ENCRYPTION_KEYS=KEY)
    browser = Client(before)
    browser.login("alice")
    assert browser.get("/").status_code == 200
    cookie = session_cookie(browser, before)

    rotating = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_B, SECRET_KEY_FALLBACKS=f"{KEY_C}, {KEY_A}",
                       PROVISIO_ENCRYPTION_KEYS=KEY)
    during = rotating.test_client()
    during.set_cookie(rotating.config["SESSION_COOKIE_NAME"], cookie)
    assert during.get("/").status_code == 200  # still signed in

    retired = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_B, PROVISIO_ENCRYPTION_KEYS=KEY)
    after = retired.test_client()
    after.set_cookie(retired.config["SESSION_COOKIE_NAME"], cookie)
    response = after.get("/")
    assert response.status_code == 302 and "/auth/login" in response.location


def test_a_form_token_signed_with_a_retired_key_lasts_while_the_key_is_a_fallback(restart, admin_id):
    before = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_A, PROVISIO_ENCRYPTION_KEYS=KEY)
    browser = Client(before)
    browser.login("alice")
    token, cookie = browser.token(), session_cookie(browser, before)  # a page rendered before the restart

    # The session is re-signed with the new key each time, so only the form token's key is in question.
    retired = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_B, PROVISIO_ENCRYPTION_KEYS=KEY)
    after = retired.test_client()
    after.set_cookie(retired.config["SESSION_COOKIE_NAME"], resigned(cookie, before, retired))
    refused = after.post("/auth/logout", data={"csrf_token": token})
    assert refused.status_code == 400 and "Form expired" in refused.get_data(as_text=True)

    rotating = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_B, SECRET_KEY_FALLBACKS=KEY_A,
                       PROVISIO_ENCRYPTION_KEYS=KEY)
    during = rotating.test_client()
    during.set_cookie(rotating.config["SESSION_COOKIE_NAME"], resigned(cookie, before, rotating))
    accepted = during.post("/auth/logout", data={"csrf_token": token})
    assert accepted.status_code == 302 and "/auth/login" in accepted.location


def test_a_receipt_callback_url_made_with_a_retired_key_lasts_while_the_key_is_a_fallback(restart):
    before = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_A, PROVISIO_ENCRYPTION_KEYS=KEY)
    with before.app_context():
        # The URL as it goes in the provider's dashboard.
        url = receipts.callback_urls("http://x")["vonage"].removeprefix("http://x")
    receipt = {"messageId": "0000-unknown", "status": "delivered"}

    rotating = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_B, SECRET_KEY_FALLBACKS=KEY_A,
                       PROVISIO_ENCRYPTION_KEYS=KEY)
    assert rotating.test_client().post(url, json=receipt).status_code == 204

    retired = restart(PROVISIO_ENV="production", SECRET_KEY=KEY_B, PROVISIO_ENCRYPTION_KEYS=KEY)
    assert retired.test_client().post(url, json=receipt).status_code == 404


def test_a_weak_fallback_key_refuses_to_start(restart):
    with pytest.raises(RuntimeError, match=r"SECRET_KEY_FALLBACKS \(key 2 of 2\) looks like a placeholder"):
        restart(PROVISIO_ENV="production", SECRET_KEY=KEY_B,
                SECRET_KEY_FALLBACKS=f"{KEY_A},change-me-later-please-0123456789",
                PROVISIO_ENCRYPTION_KEYS=KEY)


# 4. What the link page hands to the app

RENDERED_TYPES = ["text/html", "text/plain", "text/xml", "text/javascript", "application/xhtml+xml",
                  "image/svg+xml", "application/xml", "application/javascript", "application/x-javascript",
                  "application/vnd.example+xml", "application/x-pdf", "application/octet-stream",
                  "multipart/x-mixed-replace", "foo/bar", "application/x-", "application/.."]


@pytest.mark.parametrize("mime_type", RENDERED_TYPES)
def test_settings_refuse_an_activation_mime_type_a_browser_renders_or_sniffs(app, admin, mime_type):
    page = admin.post("/admin/settings", settings_form(activation_mime_type=mime_type))

    assert page.status_code == 200
    errors = re.findall(r'class="field__error">([^<]*)<', page.get_data(as_text=True))
    assert any("render or sniff" in error.lower() for error in errors), errors
    with app.app_context():
        assert settings.get("activation_mime_type") == "application/x-provisio-activation"


def test_settings_keep_a_type_of_the_apps_own_in_lower_case(app, admin):
    for typed, kept in [("application/vnd.example.activation", "application/vnd.example.activation"),
                        (" Application/X-Provisio-Activation ", "application/x-provisio-activation")]:
        page = admin.post("/admin/settings", settings_form(activation_mime_type=typed), follow_redirects=True)
        assert "Settings saved." in page.get_data(as_text=True)
        with app.app_context():
            assert settings.get("activation_mime_type") == kept


@pytest.mark.parametrize("scheme", ["javascript", "data", "http", "https", "file", "blob", "vbscript",
                                    "about", "view-source", "intent", "itms-services", "ms-msdt", "mailto"])
def test_settings_refuse_a_uri_scheme_a_browser_or_another_program_handles(app, admin, scheme):
    page = admin.post("/admin/settings", settings_form(app_uri_scheme=scheme))

    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Settings saved." not in text
    assert "is handled by the browser or another program" in text
    with app.app_context():
        assert settings.get("app_uri_scheme") == "provisio"


def test_saving_a_rendered_type_is_refused_whoever_calls_the_service(app):
    with app.app_context():
        with pytest.raises(Invalid) as refused:
            settings.save({"activation_mime_type": "text/html"}, actor="script")
        assert refused.value.field == "activation_mime_type"
        with pytest.raises(Invalid):
            settings.save({"app_uri_scheme": "javascript"}, actor="script")
        assert db.session.get(Setting, "activation_mime_type") is None


def test_a_refused_value_stored_earlier_is_never_served(app):
    with app.app_context():
        db.session.add_all([Setting(key="activation_mime_type", value="text/html"),
                            Setting(key="app_uri_scheme", value="javascript")])
        db.session.commit()

        assert settings.get("activation_mime_type") == "application/x-provisio-activation"
        assert settings.get("app_uri_scheme") == "provisio"


@pytest.mark.parametrize(("name", "value"), [("ACTIVATION_MIME_TYPE", "text/html"),
                                             ("APP_URI_SCHEME", "javascript")])
def test_the_environment_cannot_set_what_a_browser_renders_or_runs(empty_instance, name, value):
    with pytest.raises(RuntimeError, match=f"Refusing to start with {name}='{value}'"):
        create_app(production(**{name: value}))


# 5. The example environment file

def example_values() -> dict[str, str]:
    lines = [line for line in EXAMPLE.read_text().splitlines() if line and not line.startswith("#")]
    return {name: value.strip().strip("'\"") for name, _, value in (line.partition("=") for line in lines)}


def test_the_example_environment_file_does_not_start_as_it_stands(restart):
    values = example_values()

    with pytest.raises(RuntimeError, match="Refusing to start"):
        restart(**{key: values[key] for key in FROM_ENVIRONMENT if key in values})
    # Neither secret of the example passes on its own either: no usable placeholder in it.
    with pytest.raises(RuntimeError, match="Refusing to start"):
        restart(PROVISIO_ENV="production", SECRET_KEY=values["SECRET_KEY"], PROVISIO_ENCRYPTION_KEYS=KEY)
    with pytest.raises(RuntimeError, match="Refusing to start"):
        restart(PROVISIO_ENV="production", SECRET_KEY=KEY_A,
                PROVISIO_ENCRYPTION_KEYS=values["PROVISIO_ENCRYPTION_KEYS"])


def test_the_commands_the_example_gives_generate_keys_that_start_production(restart):
    commands = dict(re.findall(r"^#\s+(SECRET_KEY|PROVISIO_ENCRYPTION_KEYS)\s+\S*python\S* -c '([^']+)'$",
                               EXAMPLE.read_text(), flags=re.MULTILINE))
    assert set(commands) == {"SECRET_KEY", "PROVISIO_ENCRYPTION_KEYS"}

    generated = {name: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout.strip() for name, code in commands.items()}
    started = restart(PROVISIO_ENV="production", **generated)
    assert started.config["SECRET_KEY"] == generated["SECRET_KEY"]
    Fernet(started.config["ENCRYPTION_KEYS"][0])
