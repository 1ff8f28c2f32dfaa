"""CSV import (SPEC §6): upload, the check of every row, the confirmation writing all rows in one
transaction, sending afterwards, and every kind of bad file or row refused with a clear report."""

import csv
import html
import io
import os
import random
import re

import pytest
from sqlalchemy import func, select

from extensions import db, vault
from models import AccessRule, Account, AuditEvent, Job, JobState, Message, Status, StatusEvent
from services import idempotency, imports, staff
from services.imports import job as import_job
from services.imports import reader
from tests.webtools import detached, flashes, page_text, primed, run_worker

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT_DIR, "static", "samples", "accounts-sample.csv")
ERROR_ROW = re.compile(r'<tr><td class="mono">(\d+)</td><td class="mono">([^<]*)</td><td>(.*?)</td></tr>',
                       re.S)


# --- helpers -------------------------------------------------------------------------------------


def csv_file(*lines: str, newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode()


def upload(browser, content: bytes, group_id: int, filename: str = "accounts.csv"):
    return browser.post("/imports/", {"file": (io.BytesIO(content), filename), "group_id": str(group_id)})


def uploaded(browser, content: bytes, group_id: int) -> int:
    """Upload a file the header check accepts; return the import's id."""
    response = upload(browser, content, group_id)
    assert response.status_code == 302, page_text(response)
    return int(re.fullmatch(r"/imports/(\d+)", response.headers["Location"]).group(1))


def work(app) -> None:
    """Run the worker as `flask worker --once` does until nothing is left: jobs and messages."""
    run_worker(app)


def checked(app, browser, content: bytes, group_id: int) -> tuple[int, str]:
    """Upload, let the worker check the rows, and return the import's id and its page."""
    job_id = uploaded(browser, content, group_id)
    work(app)
    return job_id, page_text(browser.get(f"/imports/{job_id}"))


def confirm(browser, job_id: int, send: str = ""):
    return browser.post(f"/imports/{job_id}/confirm", {"send": send})


def errors_on(page: str) -> list[tuple[int, str, str]]:
    return [(int(row), html.unescape(column), html.unescape(message))
            for row, column, message in ERROR_ROW.findall(page)]


def has_error(page: str, row: int, column: str, text: str) -> bool:
    return any(r == row and c == column and text in m for r, c, m in errors_on(page))


def account_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Account.id)))


def accounts_by_number(app) -> dict[str, Account]:
    with app.app_context():
        found = {account.callerid: account for account in db.session.scalars(select(Account))}
        for account in found.values():
            account.rules_snapshot = {kind: account.rules_of(kind) for kind in ("deny", "permit")}
            account.password_plain = vault.decrypt(account.password_encrypted)
            account.events = [event.status for event in account.status_events]
            db.session.expunge(account)
        return found


def job_row(app, job_id: int) -> Job:
    return detached(app, Job, job_id)


def import_audit(app) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "account.import")))
        for event in events:
            db.session.expunge(event)
        return events


HEADER = "callerid,owner,email,username,password,group,profile,account_type,mac_address,deny,permit"


@pytest.fixture
def admin(admin):
    return primed(admin)


@pytest.fixture
def csr(csr):
    return primed(csr)


# --- the happy path ------------------------------------------------------------------------------


def test_an_import_checks_then_writes_plain_wizard_and_snom_rows_in_one_go(app, admin, group, profile):
    content = csv_file(
        HEADER,
        "+41 79 123 45 01,Anna Meier,anna@example.com,anna01,Sip-password-1234,,,pgsm,,,",
        "+41791234502,Bruno Keller,,,,Group A,Standard,,,,",
        "+41441234503,Reception,,,,,,snom,00:04:13:92:2d:24,0.0.0.0/0.0.0.0,216.27.242.66/32; 10.0.0.0/8",
    )
    job_id = uploaded(admin, content, group)

    waiting = admin.get(f"/imports/{job_id}")
    assert waiting.status_code == 200
    assert "<progress" in page_text(waiting) and account_count(app) == 0
    block = page_text(admin.get(f"/imports/{job_id}/progress"))
    assert "<progress" in block and "data-finished" not in block

    work(app)
    page = page_text(admin.get(f"/imports/{job_id}"))
    assert "3 rows ready to import" in page
    assert "1 generated (random free numbers)" not in page  # two usernames are generated
    assert "2 generated (random free numbers)" in page
    assert account_count(app) == 0  # nothing is written before the confirmation

    response = confirm(admin, job_id)
    assert response.status_code == 302
    work(app)

    done = admin.get(f"/imports/{job_id}")
    assert "3 accounts created" in page_text(done)
    found = accounts_by_number(app)
    assert set(found) == {"+41791234501", "+41791234502", "+41441234503"}
    anna, bruno, desk = found["+41791234501"], found["+41791234502"], found["+41441234503"]
    assert (anna.username, anna.password_plain, anna.owner, anna.email) == (
        "anna01", "Sip-password-1234", "Anna Meier", "anna@example.com")
    assert re.fullmatch(r"[1-9]\d{7}", bruno.username) and re.fullmatch(r"[1-9]\d{7}", desk.username)
    assert len(bruno.password_plain) >= 20 and bruno.password_plain != desk.password_plain
    assert all(a.wizard and not a.enabled and a.status is Status.CREATED for a in found.values())
    assert all(a.events == [Status.CREATED] for a in found.values())
    assert all(a.group_id == group for a in found.values())
    assert bruno.profile_id == profile and anna.profile_id is None  # named, or the group's
    assert (anna.security_model, anna.obfuscation, anna.obfuscation_key, anna.keepalive) == (
        "end-to-end", True, "9", False)
    assert (desk.account_type.value, desk.mac_address, desk.security_model, desk.obfuscation) == (
        "snom", "000413922D24", None, False)
    assert desk.rules_snapshot == {"deny": ["0.0.0.0/0.0.0.0"],
                                   "permit": ["216.27.242.66/255.255.255.255", "10.0.0.0/255.0.0.0"]}
    events = import_audit(app)
    assert len(events) == 1
    assert (events[0].actor, events[0].target_id, events[0].detail["created"]) == ("alice", job_id, 3)
    job = job_row(app, job_id)
    assert (job.state, job.phase, job.result["created"]) == (JobState.DONE, imports.Phase.IMPORTED, 3)
    assert "Sip-password-1234" not in repr(job.payload) + repr(job.result)  # the rows are gone


def test_the_sample_file_imports_without_errors(app, admin, group):
    with open(SAMPLE, "rb") as handle:
        content = handle.read()
    job_id, page = checked(app, admin, content, group)
    rows = sum(1 for _ in csv.reader(io.StringIO(content.decode()))) - 1

    assert errors_on(page) == [] and f"{rows} rows ready to import" in page
    confirm(admin, job_id)
    work(app)
    assert account_count(app) == rows


def test_upload_page_links_the_sample_and_offers_only_the_users_groups(app, csr, group, other_group):
    page = page_text(csr.get("/imports/"))

    sample = re.search(r'href="([^"]+accounts-sample\.csv)"', page).group(1)
    download = csr.get(sample)
    assert download.status_code == 200 and download.data.startswith(b"callerid,")
    assert "Group A" in page and "Group B" not in page
    assert 'href="/imports/"' in page_text(csr.get("/"))  # the console's navigation links here


def test_every_documented_column_is_in_the_docs_and_the_sample():
    with open(os.path.join(ROOT_DIR, "docs", "csv-import.md"), encoding="utf-8") as handle:
        docs = handle.read()
    with open(SAMPLE, encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")

    assert [name for name in imports.COLUMN_NAMES if f"`{name}`" not in docs] == []
    assert sorted(header) == sorted(imports.COLUMN_NAMES)


# --- bad rows ------------------------------------------------------------------------------------


BAD_HEADER = ("callerid", "owner", "email", "password", "account_type", "security_model", "obfuscation",
              "obfuscation_key", "mac_address", "deny", "group", "profile", "licence_expires_on",
              "secondary_callerid")
BAD_ROWS = [  # the row's cells by column, the column the error names, and words of its message
    ({"callerid": "", "owner": "No Number"}, "callerid", "Every account needs its virtual phone number."),
    ({"callerid": "0791234567"}, "callerid", "leading +"),
    ({"callerid": "+41 00 000 00 00"}, "callerid", "numbering plan"),
    ({"email": "not-an-address"}, "email", "Not a valid e-mail address."),
    ({"password": "short"}, "password", "at least 12 characters"),
    ({"account_type": "fax"}, "account_type", "Write pgsm"),
    ({"security_model": "top-secret"}, "security_model", "Use one of the security models"),
    ({"obfuscation": "maybe"}, "obfuscation", "Write yes or no."),
    ({"account_type": "snom", "mac_address": "not-a-mac"}, "mac_address", "12 hexadecimal digits"),
    ({"account_type": "snom", "deny": "10.0.0.1"}, "deny", "<ip address>/<netmask>"),
    ({"account_type": "snom", "security_model": "end-to-end"}, "security_model",
     "SNOM phones have no security model"),
    ({"mac_address": "000413922D25"}, "mac_address", "PGSM accounts have no MAC address"),
    ({"profile": "Nope"}, "profile", "Unknown provisioning profile “Nope”."),
    ({"licence_expires_on": "31.12.2027"}, "licence_expires_on", "YYYY-MM-DD"),
    ({"owner": "x" * 129}, "owner", "At most 128 characters"),
    ({"secondary_callerid": "+41791230016"}, "secondary_callerid", "must differ from the primary"),
    ({"group": "Nowhere"}, "group", "Unknown group “Nowhere”."),
    (None, "—", "The row has 15 cells but the header has 14 columns."),
]


def bad_line(number: int, cells: dict | None) -> str:
    """One CSV line of BAD_HEADER's columns, with a unique valid number unless the row sets its own."""
    if cells is None:
        return ",".join(["+41791239999"] + ["x"] * 14)
    values = {"callerid": f"+417912300{number:02d}", **cells}
    if "secondary_callerid" in cells:
        values["callerid"] = cells["secondary_callerid"]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([values.get(name, "") for name in BAD_HEADER])
    return out.getvalue()


def test_every_kind_of_bad_row_is_reported_with_its_row_and_nothing_is_written(app, admin, group):
    lines = [bad_line(number, cells) for number, (cells, _, _) in enumerate(BAD_ROWS, start=2)]
    good = bad_line(99, {"owner": "Good Row"})
    job_id, page = checked(app, admin, csv_file(",".join(BAD_HEADER), *lines, good), group)

    for number, (_, column, message) in enumerate(BAD_ROWS, start=2):
        assert has_error(page, number, column, message), (number, column, message, errors_on(page))
    assert len(errors_on(page)) == len(BAD_ROWS)  # one each, and none on the good row
    assert f"in {len(BAD_ROWS)} of {len(BAD_ROWS) + 1} rows" in html.unescape(page)
    assert "Nothing was written" in page

    refused = confirm(admin, job_id)
    work(app)
    assert ("error", "Nothing can be imported while rows have errors: fix the file and upload it again.") in \
        flashes(admin.get(refused.headers["Location"]))
    assert account_count(app) == 0


def test_duplicates_inside_the_file_and_against_the_database_are_reported(app, admin, group, make_account):
    make_account(username="taken01", callerid="+41791110001", secondary_callerid="+41791110002")
    make_account(account_type="snom", mac_address="000413922D24", security_model=None, obfuscation=False,
                 obfuscation_key="", callerid="+41441110003")
    content = csv_file(
        "callerid,username,secondary_callerid,account_type,mac_address",
        "+41791110001,,,,",  # 2: the existing primary
        "+41791110009,taken01,,,",  # 3: the existing username
        "+41791110010,,+41791110002,,",  # 4: the existing secondary, as a secondary
        "+41791110002,,,,",  # 5: the existing secondary, as a primary
        "+41791110020,twice,,,",  # 6
        "+41791110020,twice,,,",  # 7: both values again
        "+41791110030,,+41791110020,,",  # 8: another row's primary as a secondary
        "+41441110040,,,snom,00-04-13-92-2D-24",  # 9: the existing MAC
    )
    job_id, page = checked(app, admin, content, group)

    expected = [(2, "callerid", "+41791110001 is already used by another account."),
                (3, "username", "taken01 is already used by another account."),
                (4, "secondary_callerid", "+41791110002 is already used by another account."),
                (5, "callerid", "+41791110002 is already used by another account."),
                (5, "callerid", "+41791110002 is also on row 4."),
                (7, "username", "twice is also on row 6."),
                (7, "callerid", "+41791110020 is also on row 6."),
                (8, "secondary_callerid", "+41791110020 is also on row 6."),
                (9, "mac_address", "000413922D24 is already used by another account.")]
    assert sorted(errors_on(page)) == sorted(expected)
    assert account_count(app) == 2


def test_usernames_are_held_to_the_forms_rules_and_compared_in_any_case(app, admin, group, make_account):
    make_account(username="Taken01", callerid="+41791110001")
    content = csv_file(
        "callerid,username",
        "+41791110011,TAKEN01",  # 2: an existing username in other letters
        "+41791110012,Bob",  # 3
        "+41791110013,bob",  # 4: row 3's, in other letters
        "+41791110014,no good",  # 5
        "+41791110015,x",  # 6
    )
    job_id, page = checked(app, admin, content, group)

    rule = ("A username has 3 to 64 characters: letters, digits and - _ . ! ~ * ' ( ) + "
            "(no spaces, no accents).")
    assert sorted(errors_on(page)) == sorted([
        (2, "username", "TAKEN01 is already used by another account."),
        (4, "username", "bob is also on row 3."),
        (5, "username", rule), (6, "username", rule)])
    assert account_count(app) == 1


def test_a_csr_cannot_import_into_a_group_they_do_not_serve(app, csr, group, other_group):
    content = csv_file("callerid,group", "+41791230001,Group B", "+41791230002,No Such Group",
                       "+41791230003,group a")
    job_id, page = checked(app, csr, content, group)

    # Another group's name reads exactly like a group that does not exist.
    assert errors_on(page) == [(2, "group", "Unknown group “Group B”."),
                               (3, "group", "Unknown group “No Such Group”.")]
    refused = upload(csr, csv_file("callerid", "+41791230004"), other_group)
    assert refused.status_code == 200 and "Not a valid choice" in page_text(refused)


def test_a_group_without_a_profile_needs_one_named_in_the_row(app, admin, group, other_group):
    content = csv_file("callerid,profile", "+41791230001,", "+41791230002,standard")
    job_id, page = checked(app, admin, content, other_group)

    assert errors_on(page) == [
        (2, "profile", "The group Group B has no provisioning profile: name one in the profile column.")]


def test_formula_cells_are_refused_except_the_plus_of_a_phone_number(app, admin, group):
    content = csv_file(
        "callerid,owner,description,username,password,email",
        '+41791230001,"=HYPERLINK(""http://evil.example"")",,,,',
        "+41791230002,,@SUM(A1:A9),,,",
        "+41791230003,,,-2+3,,",
        "+41791230004,+cmd,,,,",
        "+41791230005,,,,=Secret-password-99,",
        "+41 79 123 00 06,Fine Row,A - B,,,",
    )
    job_id, page = checked(app, admin, content, group)

    assert [(row, column) for row, column, _ in errors_on(page)] == [
        (2, "owner"), (3, "description"), (4, "username"), (5, "owner"), (6, "password")]
    assert all("spreadsheet formulas" in message for _, _, message in errors_on(page))
    assert "Secret-password-99" not in page  # a refused password is never shown
    report = admin.get(f"/imports/{job_id}/errors.csv")
    assert report.mimetype == "text/csv"
    assert all(not cell.startswith(("=", "+", "-", "@"))
               for row in csv.reader(io.StringIO(report.get_data(as_text=True))) for cell in row)


# --- bad files -----------------------------------------------------------------------------------


def junk_text() -> bytes:
    return "".join(random.Random(7).choices("abcdefghij,;\"' ", k=10 * 1024 * 1024)).encode()


@pytest.mark.parametrize(("content", "message"), [
    (csv_file("name,phone", "Anna,+41791230001"), "Unknown column “name”"),
    (csv_file("caller_id,owner", "+41791230001,Anna"), "(did you mean callerid?)"),
    (csv_file("owner,email", "Anna,anna@example.com"), "The header has no callerid column"),
    (csv_file("callerid,owner,Owner", "+41791230001,a,b"), "names the column owner twice"),
    (csv_file("callerid,,owner", "+41791230001,,a"), "Column 2 of the header has no name"),
    (csv_file("callerid,owner"), "The file has a header but no rows."),
    (b"", "The file is empty."),
    ("callerid,owner\n+41791230001,Müller\n".encode("latin-1"),
     "not UTF-8 text (line 2 holds the byte 0xFC)"),
    ("callerid\n+41791230001\n".encode("utf-16"), "UTF-16"),
    (b"PK\x03\x04" + bytes(200), "Excel workbook"),
    (b"callerid,owner\n+41791230001,a\x00b\n", "binary data"),
    (csv_file("callerid,owner", '+41791230001,"unclosed'), "Row 2 is not valid CSV"),
    (random.Random(3).randbytes(10 * 1024 * 1024), "not UTF-8 text"),
    (junk_text(), "The first line is not a header"),
])
def test_a_bad_file_is_refused_at_once_with_a_clear_message(app, admin, group, content, message):
    response = upload(admin, content, group)

    assert response.status_code == 200
    assert message in html.unescape(page_text(response))
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0
    assert account_count(app) == 0


def test_a_file_over_the_size_limit_answers_413_unread(app, admin, group, monkeypatch):
    monkeypatch.setattr(imports, "MAX_BYTES", 1024 * 1024)

    response = upload(admin, b"callerid\n" + b"+41791230001\n" * 200_000, group)

    assert response.status_code == 413
    assert "The file is larger than 1 MB" in page_text(response)


def test_a_file_with_too_many_rows_is_refused(app, admin, group, monkeypatch):
    monkeypatch.setattr(reader, "MAX_ROWS", 2)

    response = upload(admin, csv_file("callerid", "+41791230001", "+41791230002", "+41791230003"), group)

    assert "more than 2 rows" in page_text(response)


def test_a_byte_order_mark_windows_line_endings_and_semicolons_are_accepted(app, admin, group):
    content = b"\xef\xbb\xbf" + csv_file("callerid;owner;description", '+41791230001;Anna;"two\r\nlines"',
                                         "+41791230002;Bruno;", "", ";;", newline="\r\n")
    job_id, page = checked(app, admin, content, group)

    assert errors_on(page) == [] and "2 rows ready to import" in page
    confirm(admin, job_id)
    work(app)
    found = accounts_by_number(app)
    assert (found["+41791230001"].owner, found["+41791230001"].description) == ("Anna", "two\r\nlines")
    assert found["+41791230002"].owner == "Bruno"


# --- access, reloads, confirmation ---------------------------------------------------------------


def test_viewers_get_403_on_every_import_page(app, viewer, admin, group):
    job_id = uploaded(admin, csv_file("callerid", "+41791230001"), group)

    assert viewer.get("/imports/").status_code == 403
    assert upload(primed(viewer), csv_file("callerid", "+41791230002"), group).status_code == 403
    assert viewer.get(f"/imports/{job_id}").status_code == 403
    assert confirm(viewer, job_id).status_code == 403
    assert "Import CSV" not in page_text(viewer.get("/"))


def test_another_users_import_does_not_exist_for_a_csr(app, admin, csr, group):
    job_id = uploaded(admin, csv_file("callerid", "+41791230001"), group)

    assert csr.get(f"/imports/{job_id}").status_code == 404
    assert csr.get(f"/imports/{job_id}/progress").status_code == 404
    assert confirm(csr, job_id).status_code == 404


def without_csrf(page: str) -> str:
    """A page without its CSRF tokens, which carry the second they were signed in."""
    return re.sub(r'(name="csrf_token"[^>]*value=")[^"]+', r"\1", page)


def test_a_reload_shows_the_same_state_at_every_step(app, admin, group):
    job_id = uploaded(admin, csv_file("callerid,owner", "+41791230001,Anna", "+41791230001,Bruno"), group)
    running = without_csrf(admin.get(f"/imports/{job_id}").get_data(as_text=True))
    assert running == without_csrf(admin.get(f"/imports/{job_id}").get_data(as_text=True))
    assert "<progress" in running

    work(app)
    first, again = (without_csrf(page_text(admin.get(f"/imports/{job_id}"))) for _ in range(2))
    assert first == again
    assert errors_on(first) == [(3, "callerid", "+41791230001 is also on row 2.")]
    block = page_text(admin.get(f"/imports/{job_id}/progress"))
    assert "data-finished" in block and "<h2>Checked</h2>" in block
    assert "2 of 2 done (100%)" in block
    listed = page_text(admin.get("/imports/"))
    assert f'href="/imports/{job_id}"' in listed and "1 errors" in listed


def test_confirming_twice_writes_once(app, admin, group):
    job_id, _ = checked(app, admin, csv_file("callerid", "+41791230001", "+41791230002"), group)

    said = []
    for _ in range(2):  # a double click, or a second tab
        said += flashes(admin.get(confirm(admin, job_id).headers["Location"]))
    work(app)
    said += flashes(admin.get(confirm(admin, job_id).headers["Location"]))
    work(app)

    assert said[:2] == [("success", "Confirmed: the accounts are being written."),
                        ("error", "This import was already confirmed.")]
    assert ("error", "This import was already confirmed.") in said[2:]
    assert account_count(app) == 2
    assert len(import_audit(app)) == 1


def test_rows_taken_between_the_check_and_the_confirmation_are_reported_and_nothing_is_written(
        app, admin, group, make_account):
    job_id, _ = checked(app, admin, csv_file("callerid", "+41791230001", "+41791230002"), group)
    make_account(callerid="+41791230002")

    confirm(admin, job_id)
    work(app)

    page = page_text(admin.get(f"/imports/{job_id}"))
    assert errors_on(page) == [(3, "callerid", "+41791230002 is already used by another account.")]
    assert "the database changed after the check" in page
    assert account_count(app) == 1 and import_audit(app) == []


def test_an_import_whose_staff_user_was_deactivated_writes_nothing(app, admin, admin_id, group):
    job_id, _ = checked(app, admin, csv_file("callerid", "+41791230001"), group)
    confirm(admin, job_id)
    with app.app_context():
        staff.get(admin_id).active = False
        db.session.commit()

    work(app)

    job = job_row(app, job_id)
    assert job.state is JobState.FAILED and "can no longer sign in" in job.error
    assert account_count(app) == 0


# --- sending afterwards --------------------------------------------------------------------------


def test_the_send_option_queues_a_message_to_every_account_that_can_receive_it(
    app, admin, group, mail_settings
):
    content = csv_file("callerid,owner,email", "+41791230001,Anna,anna@example.com",
                       "+41791230002,Bruno,bruno@example.com", "+41791230003,Carla,")
    job_id, _ = checked(app, admin, content, group)

    confirm(admin, job_id, send="link:email")
    work(app)  # writes, queues, and delivers the messages through the test's SMTP server

    job = job_row(app, job_id)
    carla = accounts_by_number(app)["+41791230003"]
    assert (job.result["created"], job.result["sent"]) == (3, 2)
    assert job.result["not_sent"] == {"The account has no e-mail address: add one, or send an SMS.": {
        "count": 1, "usernames": [carla.username]}}
    with app.app_context():
        keys = set(db.session.scalars(select(Message.idempotency_key)))
        ids = set(db.session.scalars(select(Account.id).where(Account.email != "")))
        statuses = set(db.session.scalars(select(Account.status).where(Account.email != "")))
    assert keys == {idempotency.for_job(job_id, account_id) for account_id in ids}  # one per job and account
    delivered = sorted(message["To"] for message in mail_settings.inbox.messages)
    assert delivered == ["anna@example.com", "bruno@example.com"]
    assert statuses == {Status.INSTALLATION_SENT}
    page = html.unescape(page_text(admin.get(f"/imports/{job_id}")))
    assert "2 secure links by e-mail queued" in page and "has no e-mail address" in page


def test_accounts_a_message_cannot_reach_are_counted_and_the_import_stands(app, admin, group):
    job_id, _ = checked(app, admin, csv_file("callerid", "+41791230001", "+41791230002"), group)

    confirm(admin, job_id, send="install:sms")  # no SMS gateway is configured
    work(app)

    job = job_row(app, job_id)
    (reason, entry), = job.result["not_sent"].items()
    assert (job.state, job.result["created"], job.result["sent"], entry["count"]) == (JobState.DONE, 2, 0, 2)
    assert reason.startswith("No SMS gateway is configured yet")
    assert account_count(app) == 2
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 0


def test_status_events_and_rules_are_written_for_every_row_in_bulk(app, admin, group):
    rows = [f"+4179{n:07d},,,snom,0.0.0.0/0.0.0.0" for n in range(1200)]
    job_id, page = checked(app, admin, csv_file("callerid,owner,email,account_type,deny", *rows), group)
    confirm(admin, job_id)
    work(app)

    with app.app_context():
        assert db.session.scalar(select(func.count(Account.id))) == 1200
        assert db.session.scalar(select(func.count(StatusEvent.id))) == 1200
        assert db.session.scalar(select(func.count(AccessRule.id))) == 1200
        assert db.session.scalar(select(func.count(func.distinct(Account.username)))) == 1200


def test_an_account_deleted_before_its_message_is_queued_is_counted_not_fatal(app, csr_id, mail_settings,
                                                                                make_account):
    kept = make_account(email="kept@example.com")
    with app.app_context():
        job = Job(kind=imports.KIND, staff_id=csr_id, total=2, payload={},
                  result={"send": "link:email", "file": "accounts.csv"})
        db.session.add(job)
        db.session.commit()
        # The second is gone.
        result = import_job._send(job, {"account_ids": [kept, kept + 1000]}, dict(job.result))

    assert result["sent"] == 1
    assert result["not_sent"]["The account was deleted since the import."]["count"] == 1
