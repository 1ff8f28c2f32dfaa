"""Administrator pages: access, groups, profiles, staff users and the audit log."""

import re

import pytest
from sqlalchemy import event, func, select

from extensions import db
from models import Account, AuditEvent, Group, Profile, Role, StaffUser
from services import staff
from services.errors import Invalid
from tests.support import PASSWORD, Client
from tests.webtools import field_errors, flashes, is_sign_in_redirect, page_text

STRONG = "another strong passphrase 7"
PROFILE_FORM = {"name": "Edge", "description": "", "sip_host": "sip.edge.example.net",
                "provisioning_host": "prov.edge.example.net:8443", "transport": "tls",
                "refetch_hours": "12", "options": '{"codecs": ["opus", "g722"]}'}
AUDIT_ROW = re.compile(r'<tr>\s*<td>.*?</td>\s*<td>(.*?)</td>\s*<td class="mono">(.*?)</td>', re.S)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def audit_rows(response) -> list[tuple[str, str]]:
    """Return (actor, action) of every row of the audit table."""
    body = page_text(response).split("<tbody>", 1)[1]
    return AUDIT_ROW.findall(body)


ADMIN_PAGES = ["/admin/groups", "/admin/groups/new", "/admin/profiles", "/admin/profiles/new",
               "/admin/staff", "/admin/staff/new", "/admin/audit"]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_reaches_every_admin_page(admin, url):
    assert admin.get(url).status_code == 200


@pytest.mark.parametrize("role", ["csr", "viewer"])
@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_other_roles_get_403_on_admin_pages(request, role, url):
    browser = request.getfixturevalue(role)

    assert browser.get(url).status_code == 403


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_anonymous_visitor_is_sent_to_sign_in_from_admin_pages(client, url):
    assert is_sign_in_redirect(client.get(url))


def test_csr_cannot_create_a_group_by_posting(app, csr):
    response = csr.post("/admin/groups/new", {"name": "Sneaky", "profile_id": "0"})

    assert response.status_code == 403
    assert count(app, Group) == 1


def test_admin_creates_and_renames_a_group(app, admin, profile):
    created = admin.post("/admin/groups/new", {"name": "Acme", "description": "Bank",
                                               "profile_id": str(profile)})
    assert created.status_code == 302
    with app.app_context():
        group = db.session.scalar(select(Group).where(Group.name == "Acme"))
        group_id, profile_id = group.id, group.profile_id
    assert profile_id == profile

    renamed = admin.post(f"/admin/groups/{group_id}/edit", {"name": "Acme Bank", "profile_id": "0"})

    assert renamed.status_code == 302
    with app.app_context():
        group = db.session.get(Group, group_id)
        assert (group.name, group.profile_id) == ("Acme Bank", None)
    assert "Acme Bank" in page_text(admin.get("/admin/groups"))


def test_duplicate_group_name_is_a_field_error(app, admin, group):
    response = admin.post("/admin/groups/new", {"name": "group a", "profile_id": "0"})

    assert response.status_code == 200
    assert field_errors(response, "name") == ["The name group a is already used."]
    assert count(app, Group) == 1


def test_deleting_a_group_asks_for_confirmation_first(app, admin, other_group):
    confirm = admin.get(f"/admin/groups/{other_group}/delete")

    assert confirm.status_code == 200
    assert "Delete the group Group B?" in page_text(confirm)
    with app.app_context():
        assert db.session.get(Group, other_group) is not None

    response = admin.post(f"/admin/groups/{other_group}/delete")

    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Group, other_group) is None


def test_group_with_accounts_cannot_be_deleted(app, admin, group, make_account):
    make_account()

    response = admin.post(f"/admin/groups/{group}/delete", follow_redirects=True)

    assert ("error", "Group A still has 1 accounts; move or delete them first.") in flashes(response)
    with app.app_context():
        assert db.session.get(Group, group) is not None
    assert count(app, Account) == 1


def test_admin_creates_and_edits_a_profile(app, admin):
    created = admin.post("/admin/profiles/new", PROFILE_FORM)
    assert created.status_code == 302
    with app.app_context():
        profile = db.session.scalar(select(Profile).where(Profile.name == "Edge"))
        profile_id = profile.id
        assert profile.options == {"codecs": ["opus", "g722"]}
        assert (profile.provisioning_host, profile.refetch_hours) == ("prov.edge.example.net:8443", 12)

    edited = admin.post(f"/admin/profiles/{profile_id}/edit",
                        {**PROFILE_FORM, "transport": "tcp", "options": "{}"})

    assert edited.status_code == 302
    with app.app_context():
        profile = db.session.get(Profile, profile_id)
        assert (profile.transport, profile.options) == ("tcp", {})


@pytest.mark.parametrize(("options", "message"), [
    ('{"codecs": ["opus"', "Not valid JSON"),
    ('["opus"]', "Write a JSON object"),
])
def test_profile_options_must_be_a_json_object(app, admin, options, message):
    response = admin.post("/admin/profiles/new", {**PROFILE_FORM, "options": options})

    assert response.status_code == 200
    assert message in field_errors(response, "options")[0]
    assert count(app, Profile) == 0


@pytest.mark.parametrize(("field", "message"), [
    ("sip_host", "A host name such as sip.example.com; its port goes in SIP server port."),
    ("provisioning_host", "A host name such as sip.example.com (optionally :port)."),
])
@pytest.mark.parametrize("host", ["sip example net", "https://sip.example.net", "sip.example.net/x",
                                  "-bad.example.net", "a" * 254])
def test_profile_hosts_must_be_host_names(app, admin, field, message, host):
    response = admin.post("/admin/profiles/new", {**PROFILE_FORM, field: host})

    assert response.status_code == 200
    assert field_errors(response, field) == [message]
    assert count(app, Profile) == 0


@pytest.mark.parametrize(("port", "error"), [
    ("", None), ("5070", None), ("0", "Number must be between 1 and 65535."),
    ("65536", "Number must be between 1 and 65535."), ("sip", "Not a valid integer value."),
])
def test_a_profiles_sip_port_is_empty_or_a_port(app, admin, port, error):
    response = admin.post("/admin/profiles/new", {**PROFILE_FORM, "sip_port": port})

    if error:
        assert response.status_code == 200 and field_errors(response, "sip_port")[0] == error
        assert count(app, Profile) == 0
    else:
        assert response.status_code == 302
        with app.app_context():
            assert db.session.scalar(select(Profile.sip_port)) == (int(port) if port else None)


def test_a_sip_host_with_a_port_is_refused_and_the_port_has_its_own_field(app, admin):
    response = admin.post("/admin/profiles/new", {**PROFILE_FORM, "sip_host": "sip.edge.example.net:5070"})

    assert field_errors(response, "sip_host") == [
        "A host name such as sip.example.com; its port goes in SIP server port."]


def test_profile_used_by_a_group_cannot_be_deleted(app, admin, profile, group):
    response = admin.post(f"/admin/profiles/{profile}/delete", follow_redirects=True)

    assert ("error", "Standard is still used by 1 groups or accounts.") in flashes(response)
    with app.app_context():
        assert db.session.get(Profile, profile) is not None


def test_unused_profile_is_deleted_after_confirmation(app, admin, profile):
    assert "Delete the provisioning profile Standard?" in page_text(
        admin.get(f"/admin/profiles/{profile}/delete"))
    assert count(app, Profile) == 1

    admin.post(f"/admin/profiles/{profile}/delete")

    assert count(app, Profile) == 0


def test_admin_creates_a_staff_user_with_a_role_and_groups(app, admin, group, other_group):
    response = admin.post("/admin/staff/new", {
        "username": "dora", "full_name": "Dora CSR", "role": "csr",
        "group_ids": [str(group), str(other_group)], "password": STRONG, "repeat": STRONG,
    })

    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalar(select(StaffUser).where(StaffUser.username == "dora"))
        assert user.role is Role.CSR
        assert user.group_ids == {group, other_group}
        assert user.password_hash.startswith("$argon2id$")


def test_weak_password_for_a_new_staff_user_writes_nothing(app, admin):
    staff_before, audit_before = count(app, StaffUser), count(app, AuditEvent)

    response = admin.post("/admin/staff/new", {"username": "dora", "role": "csr",
                                               "password": "short", "repeat": "short"})

    assert response.status_code == 200
    assert field_errors(response, "password") == ["Use at least 12 characters."]
    assert (count(app, StaffUser), count(app, AuditEvent)) == (staff_before, audit_before)


def test_weak_password_on_edit_does_not_half_save_the_role_change(app, admin, csr_id):
    with app.app_context():
        hash_before = db.session.get(StaffUser, csr_id).password_hash
    audit_before = count(app, AuditEvent)

    response = admin.post(f"/admin/staff/{csr_id}/edit", {
        "username": "carl", "role": "admin", "active": "y", "password": "carl-carl-carl-1",
        "repeat": "carl-carl-carl-1",
    })

    assert response.status_code == 200
    assert field_errors(response, "password") == ["The password must not contain the username."]
    with app.app_context():
        user = db.session.get(StaffUser, csr_id)
        assert (user.role, user.password_hash) == (Role.CSR, hash_before)
    assert count(app, AuditEvent) == audit_before


def test_a_refused_password_keeps_the_role_and_group_change_out_too(app, admin_id, csr_id, other_group):
    carl = Client(app)
    carl.login("carl")
    with app.app_context():
        user = staff.get(csr_id)
        before = (user.role, user.full_name, user.active, user.group_ids, user.password_hash)
    audit_before = count(app, AuditEvent)

    with app.app_context(), pytest.raises(Invalid, match="at least 12 characters"):
        staff.update_user(staff.get(csr_id), role=Role.VIEWER, full_name="Carl", active=True,
                          group_ids=[other_group], password="too short", actor=staff.get(admin_id))

    with app.app_context():
        user = staff.get(csr_id)
        assert (user.role, user.full_name, user.active, user.group_ids, user.password_hash) == before
    assert count(app, AuditEvent) == audit_before
    assert carl.get("/").status_code == 200  # their session did not end either


def test_a_role_group_and_password_change_land_in_one_transaction(app, admin_id, csr_id, other_group):
    carl = Client(app)
    carl.login("carl")
    with app.app_context():
        commits = []
        event.listen(db.session(), "after_commit", commits.append)
        staff.update_user(staff.get(csr_id), role=Role.VIEWER, full_name="Carl", active=True,
                          group_ids=[other_group], password=STRONG, actor=staff.get(admin_id))
        assert len(commits) == 1

    with app.app_context():
        user = staff.get(csr_id)
        assert (user.role, user.full_name, user.group_ids) == (Role.VIEWER, "Carl", {other_group})
        actions = list(db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.target_type == "staff_user", AuditEvent.target_id == csr_id).order_by(AuditEvent.id)))
    assert actions[-2:] == ["staff.update", "staff.password_reset"]
    assert is_sign_in_redirect(carl.get("/"))  # a new password ends their sessions
    assert Client(app).login("carl", STRONG).status_code == 302


def test_a_new_staff_user_needs_a_password(app, admin):
    response = admin.post("/admin/staff/new", {"username": "dora", "role": "csr"})

    assert response.status_code == 200
    assert field_errors(response, "password") == ["A new staff user needs a password."]
    assert count(app, StaffUser) == 1


def test_admin_changes_a_role_and_resets_a_password(app, admin, csr_id):
    response = admin.post(f"/admin/staff/{csr_id}/edit", {
        "username": "carl", "role": "viewer", "active": "y", "password": STRONG, "repeat": STRONG,
    })

    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(StaffUser, csr_id).role is Role.VIEWER
    assert Client(app).login("carl", STRONG).status_code == 302
    assert Client(app).login("carl", PASSWORD).status_code == 200


@pytest.mark.parametrize("change", [{"role": "csr", "active": "y"}, {"role": "admin"}])
def test_admin_cannot_demote_or_deactivate_themselves(app, admin, admin_id, change):
    response = admin.post(f"/admin/staff/{admin_id}/edit", {"username": "alice", **change})

    assert response.status_code == 200
    assert ("error", "You cannot remove your own administrator rights or deactivate yourself.") in (
        flashes(response))
    with app.app_context():
        user = db.session.get(StaffUser, admin_id)
        assert (user.role, user.active) == (Role.ADMIN, True)
    assert admin.get("/admin/staff").status_code == 200


def test_audit_log_lists_events_newest_first(admin, group):
    admin.post(f"/admin/groups/{group}/edit", {"name": "Group A2", "profile_id": "0"})

    rows = audit_rows(admin.get("/admin/audit"))

    assert rows[0] == ("alice", "group.update")
    assert ("alice", "auth.login") in rows
    assert ("test", "staff.create") in rows


def test_audit_log_filters_by_action(admin, group):
    admin.post(f"/admin/groups/{group}/edit", {"name": "Group A2", "profile_id": "0"})

    rows = audit_rows(admin.get("/admin/audit", query_string={"action": "group.update"}))

    assert rows == [("alice", "group.update")]


def test_audit_log_filters_by_actor(admin, csr_id):
    rows = audit_rows(admin.get("/admin/audit", query_string={"actor": "test"}))

    assert rows == [("test", "staff.create"), ("test", "staff.create")]


def test_audit_events_refuse_update_through_the_orm(app, admin_id):
    with app.app_context():
        event = db.session.scalar(select(AuditEvent))
        event_id, actor = event.id, event.actor
        event.actor = "someone else"
        with pytest.raises(PermissionError):
            db.session.commit()
        db.session.rollback()

    with app.app_context():
        assert db.session.get(AuditEvent, event_id).actor == actor


def test_audit_events_refuse_delete_through_the_orm(app, admin_id):
    with app.app_context():
        db.session.delete(db.session.scalar(select(AuditEvent)))
        with pytest.raises(PermissionError):
            db.session.commit()
        db.session.rollback()

    assert count(app, AuditEvent) == 1
