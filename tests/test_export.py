"""CSV export of a search: the import's header, every field, no password, formula cells neutralised,
one audit row, viewers allowed, CSRs scoped to their groups."""

import csv
import io

from sqlalchemy import delete, select

from extensions import db
from models import AccessRule, Account, AuditEvent, StatusEvent
from services.imports import COLUMN_NAMES


def export(browser, **filters):
    return browser.post("/accounts/export", {"q": "", **filters})


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="provisio-accounts-')
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    assert tuple(reader.fieldnames) == COLUMN_NAMES
    return list(reader)


def test_export_of_a_search_has_every_field_and_never_a_password(app, csr, make_account):
    make_account(username="exp00001", owner="Export Person", email="exp@example.com", callerid="+41791110001",
                 description="VIP")
    make_account(username="other001", owner="Someone Else")

    [row] = rows_of(export(csr, q="owner:export"))

    assert row["username"] == "exp00001" and row["callerid"] == "+41791110001"
    assert (row["owner"], row["email"], row["description"], row["group"]) == (
        "Export Person", "exp@example.com", "VIP", "Group A")
    assert (row["account_type"], row["obfuscation"], row["obfuscation_key"], row["keepalive"]) == (
        "pgsm", "yes", "9", "no")
    assert row["password"] == ""
    assert "Sip-password-1234" not in export(csr).get_data(as_text=True)


def test_cells_a_spreadsheet_would_run_are_neutralised_but_numbers_stay_numbers(app, csr, make_account):
    make_account(owner="=HYPERLINK(\"http://evil.example\",\"x\")", description="@SUM(A1)",
                 email="", callerid="+41791110002")
    make_account(owner="-2+3", description="+cmd|' /C calc'!A0", callerid="+41791110003")

    rows = rows_of(export(csr))

    cells = [value for row in rows for value in row.values()]
    assert not [value for value in cells if value.startswith(("=", "@", "-")) or
                (value.startswith("+") and not value[1:].isdigit())]
    assert {row["owner"] for row in rows} == {"'=HYPERLINK(\"http://evil.example\",\"x\")", "'-2+3"}
    assert {row["callerid"] for row in rows} == {"+41791110002", "+41791110003"}


def test_snom_rules_and_mac_are_exported_as_the_import_reads_them(app, admin, make_account):
    make_account(username="snomexp1", account_type="snom", mac_address="000413922D24", security_model=None,
                 obfuscation=False, obfuscation_key="", deny=["0.0.0.0/0.0.0.0"],
                 permit=["216.27.242.66/255.255.255.255", "10.0.0.0/255.0.0.0"])

    [row] = rows_of(export(admin, q="type:snom"))

    assert (row["account_type"], row["mac_address"]) == ("snom", "000413922D24")
    assert row["deny"] == "0.0.0.0/0.0.0.0"
    assert row["permit"] == "216.27.242.66/255.255.255.255;10.0.0.0/255.0.0.0"


def test_a_csr_exports_only_their_groups_and_the_export_is_audited_once(app, csr, make_account, other_group):
    make_account(username="mine0001")
    make_account(username="theirs01", group_id=other_group)

    assert [row["username"] for row in rows_of(export(csr))] == ["mine0001"]
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "account.export")))
    assert len(events) == 1 and events[0].detail == {"count": 1, "search": ""}


def test_a_viewer_may_export(viewer, make_account):
    make_account(username="viewme01")
    assert [row["username"] for row in rows_of(export(viewer))] == ["viewme01"]


def test_a_wrong_search_is_explained_and_exports_nothing(app, csr, make_account):
    make_account()
    response = export(csr, q="owner:(")

    assert response.status_code == 302
    with app.app_context():
        assert not db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.export"))


def test_an_export_goes_back_in_through_the_import_as_it_came_out(app, csr, make_account, group):
    from tests.test_imports import account_count, confirm, uploaded, work

    make_account(username="round001", owner="-2+3 Person", description="=1+1 \"quoted\"",
                 email="r@example.com", callerid="+41791110004")
    make_account(username="round002", account_type="snom", mac_address="000413922D25", security_model=None,
                 obfuscation=False, obfuscation_key="", deny=["0.0.0.0/0.0.0.0"],
                 permit=["10.0.0.0/255.0.0.0"], callerid="+41791110005")
    make_account(username="round003", description="\tTabbed note", callerid="+41791110006")  # OWASP's tab too
    downloaded = export(csr)
    exported = rows_of(downloaded)
    with app.app_context():
        for model in (AccessRule, StatusEvent, Account):
            db.session.execute(delete(model))
        db.session.commit()
    assert account_count(app) == 0

    job_id = uploaded(csr, downloaded.get_data(), group)  # the file exactly as it was downloaded
    work(app)
    confirm(csr, job_id)
    work(app)

    assert account_count(app) == 3
    assert rows_of(export(csr)) == exported
    with app.app_context():  # the apostrophes were the export's marks, not part of the values
        stored = db.session.scalar(select(Account).where(Account.username == "round001"))
        assert (stored.owner, stored.description) == ("-2+3 Person", "=1+1 \"quoted\"")
        description = db.session.scalar(select(Account.description).where(Account.username == "round003"))
        assert description == "\tTabbed note"
