"""The deployment as shipped: nginx on deploy/nginx.conf (a certificate of the test's, HTTPS on a port
other than 443) in front of gunicorn started with provisio-web.service's own command line and
environment, and the worker as provisio-worker.service starts it, on the database `flask setup` made.

Through that front an administrator signs in (password, then a code of the authenticator app set up
at the first sign-in), sends a secure link by e-mail, and a phone opens it and activates; then what an
operator and an attacker see of it: nginx's headers and log, /readyz and /metrics.
"""

import html
import re
import stat
import time

import pytest
import requests

import headers
from extensions import db
from models import Account, Status
from services import staff
from tests.deploy.conftest import require
from tests.deploy.shipped import CSRF, HOST, IDEMPOTENCY, IPHONE, ROOT, running, signed_in, wait_for_mail

NEEDS = ("nginx", "gunicorn")
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                    "Strict-Transport-Security")
METRIC = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, database_url):
    """Install and start the shipped pieces, as docs/operations.md says, on loopback ports of the test's."""
    require(*NEEDS)
    with running(tmp_path_factory.mktemp("deployment"), database_url) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def activated(deployment):
    """Sign in, send the link, open it on an iPhone and activate; keep what each step answered."""
    browser = signed_in(deployment)
    page = browser.get(f"/accounts/{deployment.account_id}")
    sent = browser.post(f"/accounts/{deployment.account_id}/send", {
        "csrf_token": CSRF.search(page.text).group(1),
        "idempotency_key": IDEMPOTENCY.search(page.text).group(1),
        "kind": "link", "channel": "email"})
    assert sent.status_code == 302, sent.text
    mail = wait_for_mail(deployment.smtp, 1)
    link = re.search(rf"https://{re.escape(HOST)}:{deployment.tls}/m/([A-Za-z0-9_.\-]+)", mail.get_content())
    token = link.group(1)

    phone = deployment.browser(user_agent=IPHONE)
    landing = phone.get(f"/m/{token}")
    assert landing.status_code == 200, landing.text
    activation = phone.post(f"/m/{token}/activate", {"csrf_token": CSRF.search(landing.text).group(1),
                                                      "platform": "ios"}, referrer=False)  # no-referrer page

    settings_page = browser.get("/admin/settings")
    receipt_url = re.search(rf"https://{re.escape(HOST)}:{deployment.tls}(/hooks/receipts/vonage/[0-9a-f]+)",
                            settings_page.text).group(1)
    receipt = deployment.browser(user_agent="Vonage").post(receipt_url, {"messageId": "0A0000001",
                                                                           "status": "delivered"})
    return {"token": token, "landing": landing, "activation": activation, "receipt_url": receipt_url,
            "receipt": receipt, "console": browser}


def test_through_the_shipped_front_an_admin_sends_a_link_and_an_iphone_activates(deployment, activated):
    answer = activated["activation"]

    assert answer.status_code == 200, answer.text
    assert answer.json()["account"]["username"] == "10000001"
    with deployment.app.app_context():
        assert db.session.get(Account, deployment.account_id).status is Status.ACTIVATED
    assert activated["receipt"].status_code == 204  # the provider's callback reached the app


def test_nginx_access_log_has_each_request_with_its_tokens_and_secrets_masked(deployment, activated):
    time.sleep(0.5)  # nginx writes a line once its response has left
    log = deployment.access_log
    receipt_secret = activated["receipt_url"].rsplit("/", 1)[1]

    assert activated["token"] not in log and receipt_secret not in log
    assert re.search(r'"GET /m/\[masked\] HTTP/1.1" 200 .*iPhone', log)
    assert re.search(r'"POST /m/\[masked\]/activate HTTP/1.1" 200 ', log)
    assert '"POST /hooks/receipts/vonage/[masked] HTTP/1.1" 204 ' in log
    assert re.search(r'"POST /auth/two-factor HTTP/1.1" 302 .* id=[0-9a-f]{32}$', log, re.M)


def test_nginx_says_no_version_in_its_headers_or_its_own_error_pages(deployment, activated):
    browser = deployment.browser()
    answers = {"app page": browser.get("/auth/login"), "static file": browser.get("/static/css/mobile.css"),
               "nginx 404 (metrics)": browser.get("/metrics"),
               "nginx 404 (static)": browser.get("/static/none.css")}

    servers = {what: answer.headers["Server"] for what, answer in answers.items()}
    assert servers == dict.fromkeys(answers, "nginx")
    for what in ("nginx 404 (metrics)", "nginx 404 (static)"):
        assert answers[what].status_code == 404
        assert "<center>nginx</center>" in answers[what].text and "nginx/" not in answers[what].text, what


def test_files_nginx_serves_from_static_carry_the_apps_security_headers(deployment):
    served_by_nginx = deployment.browser().get("/static/favicon.svg")
    served_by_app = requests.get(f"http://127.0.0.1:{deployment.web}/static/favicon.svg", timeout=30)

    assert served_by_nginx.status_code == 200
    assert served_by_nginx.content == (ROOT / "static/favicon.svg").read_bytes()
    assert {name: served_by_nginx.headers.get(name) for name in SECURITY_HEADERS} == {
        name: served_by_app.headers.get(name) for name in SECURITY_HEADERS}
    assert served_by_nginx.headers["Content-Security-Policy"] == headers.CSP
    assert "X-Request-ID" not in served_by_nginx.headers  # nginx answered itself: gunicorn never saw it


def test_the_console_on_a_port_other_than_443_passes_its_referer_check_and_refuses_another_origin(deployment):
    browser = deployment.browser()
    login = browser.get("/auth/login")
    token = CSRF.search(login.text).group(1)
    wrong = {"csrf_token": token, "username": "nobody", "password": "not the password"}

    same_port = browser.post("/auth/login", wrong)
    browser.page = f"https://{HOST}/auth/login"  # what the check compares with when nginx drops the port
    port_443 = browser.post("/auth/login", wrong)

    assert same_port.status_code == 200 and html.escape(staff.INVALID_LOGIN) in same_port.text  # checked
    assert port_443.status_code == 400 and "Form expired" in port_443.text


def test_readyz_through_nginx_and_a_metrics_scrape_on_this_machine_report_the_deployment(deployment,
                                                                                         activated):
    ready = deployment.browser().get("/readyz")
    scrape = requests.get(f"http://127.0.0.1:{deployment.web}/metrics", timeout=30)
    through_nginx = deployment.browser().get("/metrics")

    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert ready.json()["ready"] is True
    assert {name: check["ok"] for name, check in checks.items()} == {
        "database": True, "migrations": True, "worker": True, "outbox": True}  # the worker unit beats
    assert scrape.status_code == 200
    metrics = {(m["name"], m["labels"] or ""): float(m["value"]) for m in METRIC.finditer(scrape.text)}
    assert metrics[("provisio_activations_total", 'platform="ios"')] == 1
    assert sum(value for (name, labels), value in metrics.items()
               if name == "provisio_messages" and 'state="sent"' in labels) == 1
    assert any(name == "provisio_request_duration_seconds_count" and 'endpoint="mobile.activate"' in labels
               for name, labels in metrics)  # counted in whichever gunicorn process served it
    assert through_nginx.status_code == 404 and "<center>nginx</center>" in through_nginx.text


@pytest.mark.parametrize("name", ["provisio.db", "provisio.db-wal", "provisio.db-shm"])
def test_the_database_the_services_write_is_readable_by_their_user_alone(deployment, activated, name):
    if deployment.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL keeps its files; its role is the service's own (docs/operations.md)")
    path = deployment.folder / "instance" / name

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
