"""Sign-in, the failure throttle, sign-out, password change and server-side sessions."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from extensions import db
from models import AuditEvent, Role, StaffSession, StaffUser
from services import staff
from tests.support import PASSWORD, Client, make_config
from tests.webtools import flashes, is_sign_in_redirect, sign_in

NEW_PASSWORD = "a brand new passphrase 42"


@pytest.fixture
def second_app(app, database_url):
    """Another app instance over the same database, as after a restart or in another worker."""
    other = create_app(make_config(database_url))
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def fail_sign_ins(app, username: str, times: int) -> None:
    browser = Client(app)
    for _ in range(times):
        response = browser.login(username, "not the password at all")
        assert flashes(response) == [("error", staff.INVALID_LOGIN)]


def test_sign_in_with_the_right_password_opens_the_console(client, admin_id):
    response = client.login("alice")

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "alice" in page.get_data(as_text=True)


def test_unknown_user_and_wrong_password_get_the_identical_answer(client, admin_id):
    unknown = client.login("nobody", PASSWORD)
    wrong = client.login("alice", "not the password at all")

    assert unknown.status_code == wrong.status_code == 200
    assert flashes(unknown) == flashes(wrong) == [("error", staff.INVALID_LOGIN)]
    assert is_sign_in_redirect(client.get("/"))


def test_failures_below_the_limit_still_let_the_right_password_in(app, client, admin_id):
    fail_sign_ins(app, "alice", app.config["LOGIN_MAX_FAILURES"] - 1)

    assert client.login("alice").status_code == 302
    assert client.get("/").status_code == 200


def test_right_password_is_refused_after_too_many_failures(app, client, admin_id):
    fail_sign_ins(app, "alice", app.config["LOGIN_MAX_FAILURES"])

    response = client.login("alice")

    assert response.status_code == 200
    assert "Too many failed sign-ins" in flashes(response)[0][1]
    assert is_sign_in_redirect(client.get("/"))


def test_throttle_is_kept_in_the_database_across_app_instances(app, second_app, admin_id):
    fail_sign_ins(app, "alice", app.config["LOGIN_MAX_FAILURES"])

    browser = Client(second_app)
    response = browser.login("alice")

    assert "Too many failed sign-ins" in flashes(response)[0][1]
    assert is_sign_in_redirect(browser.get("/"))
    with second_app.app_context():
        failures = db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.login_failed")
        )
    assert failures == app.config["LOGIN_MAX_FAILURES"]


# A separate interpreter: nothing held in this process's memory can carry the count over.
SIGN_IN_ELSEWHERE = """
import json, sys
from app import create_app
from services import staff
from services.errors import ServiceError
config, password = json.loads(sys.argv[1]), sys.argv[2]
app = create_app(config)
with app.app_context():
    try:
        staff.open_session(staff.check_password("alice", password, ip=None), ip=None, user_agent=None)
    except ServiceError as exc:
        print(exc.message)
    else:
        print("signed in")
"""


def sign_in_in_another_process(database_url: str) -> str:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", SIGN_IN_ELSEWHERE, json.dumps(make_config(database_url)), PASSWORD],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True,
        timeout=60, check=True,
    )
    return result.stdout.strip()


def test_throttle_holds_in_a_new_process_over_the_same_database(app, database_url, admin_id):
    assert sign_in_in_another_process(database_url) == "signed in"

    fail_sign_ins(app, "alice", app.config["LOGIN_MAX_FAILURES"])

    assert sign_in_in_another_process(database_url).startswith("Too many failed sign-ins")


def test_staff_passwords_are_stored_as_argon2id_hashes(app, admin_id):
    with app.app_context():
        user = db.session.get(StaffUser, admin_id)
        password_hash = user.password_hash

    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_sign_out_by_get_is_not_allowed(admin):
    response = admin.get("/auth/logout")

    assert response.status_code == 405
    assert admin.get("/").status_code == 200


def test_sign_out_revokes_the_session_so_a_copied_cookie_is_worthless(app, admin):
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = admin.http.get_cookie(name).value
    before = app.test_client()
    before.set_cookie(name, cookie)
    assert before.get("/").status_code == 200  # the copy works while the session lives

    response = admin.post("/auth/logout")

    assert is_sign_in_redirect(response)
    replay = app.test_client()
    replay.set_cookie(name, cookie)
    assert is_sign_in_redirect(replay.get("/"))
    with app.app_context():
        assert db.session.scalar(select(StaffSession.revoked_at)) is not None


def test_password_change_signs_out_other_sessions_and_keeps_this_one(app, admin_id):
    here = sign_in(app, "alice")
    elsewhere = sign_in(app, "alice")

    response = here.post("/auth/password", {"current": PASSWORD, "password": NEW_PASSWORD,
                                            "repeat": NEW_PASSWORD})

    assert response.status_code == 302
    assert here.get("/").status_code == 200
    assert is_sign_in_redirect(elsewhere.get("/"))
    assert Client(app).login("alice", NEW_PASSWORD).status_code == 302
    assert Client(app).login("alice", PASSWORD).status_code == 200


def test_password_change_with_a_wrong_current_password_changes_nothing(app, admin_id):
    here = sign_in(app, "alice")
    elsewhere = sign_in(app, "alice")

    response = here.post("/auth/password", {"current": "not the password at all",
                                            "password": NEW_PASSWORD, "repeat": NEW_PASSWORD})

    assert response.status_code == 200
    assert "The current password is wrong." in response.get_data(as_text=True)
    assert elsewhere.get("/").status_code == 200
    assert Client(app).login("alice", PASSWORD).status_code == 302


@pytest.mark.parametrize("target", ["/accounts", "/accounts?status=created"])
def test_sign_in_follows_a_local_next(client, admin_id, target):
    response = client.http.post("/auth/login", query_string={"next": target},
                                data={"username": "alice", "password": PASSWORD,
                                      "csrf_token": client.token()})

    assert response.status_code == 302
    assert response.headers["Location"] == target


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/\\evil.example", "http:/evil.example"]
)
def test_sign_in_ignores_a_next_that_leaves_the_site(client, admin_id, target):
    response = client.http.post("/auth/login", query_string={"next": target},
                                data={"username": "alice", "password": PASSWORD,
                                      "csrf_token": client.token()})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_deactivated_staff_user_loses_an_open_session(app, csr, csr_id, admin_id):
    assert csr.get("/").status_code == 200

    with app.app_context():
        staff.update_user(staff.get(csr_id), role=Role.CSR, full_name="", active=False,
                          group_ids=[], actor=staff.get(admin_id))

    assert is_sign_in_redirect(csr.get("/"))
    assert Client(app).login("carl").status_code == 200  # and cannot sign in again


def test_inactive_staff_user_is_refused_even_if_a_session_row_survives(app, csr, csr_id):
    with app.app_context():
        db.session.get(StaffUser, csr_id).active = False  # as if set outside the service
        db.session.commit()

    assert is_sign_in_redirect(csr.get("/"))
