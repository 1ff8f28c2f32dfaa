"""What an operator relies on: /healthz, /readyz, /metrics (for the operator only) and one log line
per request with a request id and no secret in it."""

import json
import logging
import re

import pytest
from flask_migrate import upgrade
from sqlalchemy import select

from app import create_app
from extensions import db
from models import Account, Channel, Message, MessageKind, Status, WorkerBeat
from services import accounts, health, messaging, staff
from tests.support import PASSWORD, Client, make_config
from tests.webtools import issue_link, run_worker

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
METRIC = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


def scrape(client, **headers) -> dict[tuple[str, str], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.status_code
    samples = METRIC.finditer(response.get_data(as_text=True))
    return {(m["name"], m["labels"] or ""): float(m["value"]) for m in samples}


class Lines(logging.Handler):
    """Every formatted line a logger writes, kept for the test."""

    def __init__(self, formatter=None):
        super().__init__()
        self.lines: list[str] = []
        if formatter:
            self.setFormatter(formatter)

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def request_lines():
    """The request logger's lines, formatted as its own handler formats them."""
    logger = logging.getLogger("provisio.request")
    lines = Lines(logger.handlers[0].formatter if logger.handlers else None)
    for existing in logger.handlers[0].filters if logger.handlers else ():
        lines.addFilter(existing)
    logger.addHandler(lines)
    yield lines.lines
    logger.removeHandler(lines)


# -- liveness and readiness --------------------------------------------------------------------------

def test_healthz_answers_without_the_database(tmp_path):
    broken = create_app(make_config(f"sqlite:///{tmp_path}/missing/dir/provisio.db"))
    client = broken.test_client()

    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"ready": False,
                                "checks": {"database": {"ok": False, "error": "OperationalError"}}}


def test_readyz_reports_the_worker_and_the_outbox(app, admin_id, make_account, mail_settings):
    client = app.test_client()
    first = client.get("/readyz").get_json()
    assert first["ready"] is True
    assert first["checks"]["migrations"] == {"ok": True}
    assert first["checks"]["worker"] == {"ok": False, "last_seen_seconds_ago": None}
    assert first["checks"]["outbox"] == {"ok": True, "queued": 0, "oldest_queued_seconds": None}

    with app.app_context():
        messaging.queue(db.session.get(Account, make_account(wizard=True)), MessageKind.LINK, Channel.EMAIL,
                        actor=staff.get(admin_id))
        health.worker_seen("host:1")
    second = client.get("/readyz").get_json()
    worker = second["checks"]["worker"]
    assert worker["ok"] is True and worker["last_seen_seconds_ago"] < 5
    assert second["checks"]["outbox"]["queued"] == 1
    assert 0 <= second["checks"]["outbox"]["oldest_queued_seconds"] < 5

    run_worker(app)  # the worker says it is alive, under its own name, and empties the outbox
    with app.app_context():
        assert health.worker_name() in {row for row in db.session.scalars(select(WorkerBeat.name))}
    assert client.get("/readyz").get_json()["checks"]["outbox"]["queued"] == 0


def test_readyz_says_not_ready_while_the_schema_is_behind(tmp_path):
    behind = create_app(make_config(f"sqlite:///{tmp_path}/behind.db"))
    with behind.app_context():
        upgrade(revision="251c23997868")  # short of the newest migrations
    answer = behind.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["migrations"] == {"ok": False}
    with behind.app_context():
        upgrade()
    assert behind.test_client().get("/readyz").status_code == 200


# -- metrics -------------------------------------------------------------------------------------------

def test_metrics_count_what_the_database_holds_and_what_this_process_did(app, make_account, mail_settings):
    account_id = make_account(wizard=True)
    token = issue_link(app, account_id)
    phone = app.test_client()
    page = phone.get(f"/m/{token}", headers={"User-Agent": IPHONE}).get_data(as_text=True)
    form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1), "platform": "ios"}
    before = scrape(app.test_client())
    assert phone.post(f"/m/{token}/activate", data=form, headers={"User-Agent": IPHONE}).status_code == 200
    assert phone.post(f"/m/{token}/activate", data=form, headers={"User-Agent": IPHONE}).status_code == 410

    after = scrape(app.test_client())
    grew = {key: after[key] - before.get(key, 0) for key in after}
    assert grew[("provisio_activations_total", 'platform="ios"')] == 1
    assert grew[("provisio_link_refusals_total", 'reason="reused"')] == 1
    assert after[("provisio_accounts", 'status="activated"')] == 1
    with app.app_context():
        assert after[("provisio_outbox_backlog", "")] == health.backlog()
        for (state, gateway), count in health.messages_by_state().items():
            assert after[("provisio_messages", f'gateway="{gateway}",state="{state}"')] == count
    assert after[("provisio_request_duration_seconds_count", 'endpoint="mobile.landing",method="GET"')] >= 1


def test_a_made_up_method_adds_no_series_to_the_metrics(app):
    """Any token is a method to HTTP: a client sending new ones each time must not grow the metrics."""
    client = app.test_client()
    for method in ("BREW", "WHEN", "X-ANY"):
        client.open("/healthz", method=method)
    samples = scrape(app.test_client())
    methods = {re.search(r'method="([^"]*)"', labels).group(1)
               for name, labels in samples if name == "provisio_request_duration_seconds_count"}
    assert "other" in methods
    assert not methods & {"BREW", "WHEN", "X-ANY"}


@pytest.mark.parametrize("headers", [{"X-Forwarded-For": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"}])
def test_metrics_are_not_for_anyone_a_proxy_forwards(app, headers):
    assert app.test_client().get("/metrics", headers=headers).status_code == 404


def test_metrics_are_not_for_another_machine(app):
    assert app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 404


def test_with_a_token_metrics_answer_its_bearer_wherever_it_is(database_url):
    app = create_app({**make_config(database_url), "METRICS_TOKEN": "scrape-token-0123456789abcdef"})
    client = app.test_client()
    far = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", environ_base=far).status_code == 404
    wrong = {"Authorization": "Bearer wrong"}
    assert client.get("/metrics", environ_base=far, headers=wrong).status_code == 404
    assert client.get("/metrics", headers=wrong).status_code == 404  # loopback too
    right = client.get("/metrics", environ_base=far,
                       headers={"Authorization": "Bearer scrape-token-0123456789abcdef"})
    assert right.status_code == 200 and b"provisio_outbox_backlog" in right.data


# -- logs ----------------------------------------------------------------------------------------------

def test_one_line_per_request_with_its_id_which_the_response_carries(app, request_lines):
    client = app.test_client()
    mine = client.get("/healthz", headers={"X-Request-ID": "0123456789abcdef0123456789abcdef"})
    forged = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})

    assert mine.headers["X-Request-ID"] == "0123456789abcdef0123456789abcdef"
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])
    assert len(request_lines) == 2
    assert request_lines[0].endswith("GET /healthz 200 " + request_lines[0].split(" 200 ")[1])
    assert "id=0123456789abcdef0123456789abcdef" in request_lines[0]
    assert f"id={forged.headers['X-Request-ID']}" in request_lines[1]


def test_json_lines_carry_the_request_fields(database_url):
    app = create_app({**make_config(database_url), "LOG_FORMAT": "json"})
    logger = logging.getLogger("provisio.request")
    lines = Lines(logger.handlers[0].formatter)
    lines.filters = list(logger.handlers[0].filters)
    logger.addHandler(lines)
    try:
        app.test_client().get("/m/not-a-real-token")
    finally:
        logger.removeHandler(lines)
        create_app(make_config(database_url))  # text again for the other tests
    entry = json.loads(lines.lines[-1])
    assert entry["method"] == "GET" and entry["status"] == 410 and entry["path"] == "/m/[masked]"
    assert "not-a-real-token" not in lines.lines[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"])


def test_the_logs_of_a_whole_flow_hold_no_token_password_or_credential(app, csr, mail_settings, group,
                                                                        request_lines, caplog):
    caplog.set_level(logging.DEBUG)
    response = csr.post("/accounts/wizard", {
        "account_type": "pgsm", "username": "55501234", "callerid": "+41795550000", "group_id": group,
        "profile_id": 0, "security_model": "end-to-end", "obfuscation": "y", "obfuscation_key": "9",
        "owner": "Anna Meier", "email": "anna@example.com", "send_now": "email"})
    assert response.status_code == 302
    run_worker(app)
    token = re.search(r"/m/([A-Za-z0-9_.\-]+)", mail_settings.inbox.messages[0].get_content()).group(1)
    phone = app.test_client()
    phone.get(f"/m/{token}", headers={"User-Agent": IPHONE})
    document = phone.get(f"/m/{token}/activation",
                         headers={"User-Agent": IPHONE, "X-Provisio-Client": "12.3.1"}).get_json(force=True)
    credential = document["client_api"]["credential"]
    api = app.test_client()
    assert api.post("/api/client/v1/heartbeat", json={"app_version": "12.3.1"},
                    headers={"Authorization": f"Bearer {credential}"}).status_code == 200
    refused = Client(app).login("carl", "not the password")  # logged too, without what was typed
    assert refused.status_code == 200
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "55501234"))
        sip_password = accounts.sip_password(account)
        status = db.session.scalar(select(Account.status).where(Account.username == "55501234"))
        assert status is Status.CONNECTED
        assert db.session.scalar(select(Message.id)) is not None

    # Everything Provisio logged (the test's own SMTP server, aiosmtpd's mail.log, logs the mail it got).
    ours = [record.getMessage() for record in caplog.records if not record.name.startswith("mail.log")]
    logged = "\n".join([*request_lines, *ours])
    assert "GET /m/[masked] 200" in logged and "POST /api/client/v1/heartbeat 200" in logged
    for secret in (token, credential, sip_password, PASSWORD, "not the password", app.config["SECRET_KEY"]):
        assert secret not in logged


def test_a_worker_of_many_threads_notes_its_beat_once_and_logs_no_failure(app, caplog):
    caplog.set_level(logging.ERROR)

    output = run_worker(app, threads=8)

    assert "Handled 0 tasks" in output
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    with app.app_context():
        assert len(db.session.scalars(select(WorkerBeat)).all()) == 1
