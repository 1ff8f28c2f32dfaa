"""The deployment as shipped: nginx on deploy/nginx.conf (a certificate of the test's, HTTPS on a port
other than 443) in front of gunicorn started with provisio-web.service's own command line and
environment, and the worker as provisio-worker.service starts it, on the database `flask setup` made.

Through that front an administrator signs in (password, then a code of the authenticator app set up
at the first sign-in), sends a secure link by e-mail, and a phone opens it and activates; then what an
operator and an attacker see of it: nginx's headers and log, /readyz and /metrics.
"""

import html
import os
import re
import secrets
import signal
import ssl
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
import requests
from cryptography.fernet import Fernet
from requests.adapters import HTTPAdapter
from sqlalchemy import text

import headers
from app import create_app
from extensions import db
from models import Account, Group, Profile, Status
from services import accounts, settings, staff
from tests.deploy.conftest import require
from tests.deploy.shipped import (
    HOST,
    ROOT,
    environment_file,
    nginx_binary,
    nginx_command,
    nginx_main,
    nginx_site,
    read_unit,
    self_signed,
)
from tests.mail import SmtpServer, free_port
from tests.support import make_config
from tests.webtools import wait_for_port

NEEDS = ("nginx", "gunicorn")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
IDEMPOTENCY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')
TOTP_KEY = re.compile(r'<p class="mono totp-key"[^>]*>([A-Z2-7 ]+)</p>')
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                    "Strict-Transport-Security")
METRIC = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


class SiteName(HTTPAdapter):
    """Connect to 127.0.0.1 but speak to activate.example.com: SNI, and the certificate checked for that
    name against the test's own, in a TLS context of the test's (requests' own trusts the system's CAs)."""

    def __init__(self, cert: Path):
        self.context = ssl.create_default_context(cafile=str(cert))
        super().__init__()

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs.update(ssl_context=self.context, server_hostname=HOST)
        return host_params, pool_kwargs


class Browser:
    """What a browser sends to https://activate.example.com:<port>/: the Host with its port, cookies, and
    on a form's POST the Origin and the page's Referer (Referrer-Policy same-origin sends it)."""

    def __init__(self, port: int, cert: Path,
                 user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"):
        self.origin = f"https://{HOST}:{port}"
        self.address = f"https://127.0.0.1:{port}"
        self.session = requests.Session()
        self.session.mount("https://", SiteName(cert))
        self.session.headers.update({"Host": f"{HOST}:{port}", "User-Agent": user_agent})
        self.page = ""  # the URL of the page the browser shows

    def get(self, path: str, **kwargs) -> requests.Response:
        response = self.session.get(self.address + path, allow_redirects=False, timeout=30, **kwargs)
        self.page = self.origin + path
        return response

    def post(self, path: str, data: dict, *, referrer: bool = True, **kwargs) -> requests.Response:
        sent = {"Origin": self.origin, **({"Referer": self.page} if referrer and self.page else {})}
        return self.session.post(self.address + path, data=data, headers=sent, allow_redirects=False,
                                 timeout=30, **kwargs)

    def form_token(self) -> str:
        return CSRF.search(self.get(self.page.removeprefix(self.origin)).text).group(1)


@dataclass
class Deployment:
    tls: int
    plain: int
    web: int
    cert: Path
    folder: Path
    app: object  # the test's own app over the deployment's database (same encryption key)
    admin_password: str
    account_id: int
    smtp: SmtpServer
    database_url: str

    @property
    def access_log(self) -> str:
        return (self.folder / "provisio.access.log").read_text()

    def browser(self, **kwargs) -> Browser:
        return Browser(self.tls, self.cert, **kwargs)


def start(command: list[str], *, cwd: Path, env: dict, log: Path, umask: int = 0o022) -> subprocess.Popen:
    """A server of the test's, in its own process group (stopped by its PID), its output in `log`."""
    with open(log, "ab") as output:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                umask=umask, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to a server of the test's (gunicorn's master stops its workers), SIGKILL to its group if
    it will not stop."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def empty(url: str) -> None:
    """Delete what the deployment wrote into the suite's PostgreSQL database."""
    app = create_app(make_config(url))
    with app.app_context():
        tables = ", ".join(table.name for table in db.metadata.sorted_tables)
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


def seed(app, smtp_port: int) -> int:
    """What an administrator sets up in the console before sending links: a profile, a group, the mail
    server, and a wizard account with an e-mail address; return the account's id."""
    with app.app_context():
        profile = Profile(name="Standard", sip_host="sip.example.net", provisioning_host="prov.example.net",
                          options={})
        db.session.add(profile)
        db.session.flush()
        group = Group(name="Group A", profile_id=profile.id)
        db.session.add(group)
        db.session.commit()
        settings.save({"mail": {"mode": "smtp", "host": "127.0.0.1", "port": smtp_port, "starttls": False,
                                "username": "", "sender": "provisio@example.test"},
                       "download_urls": {"ios/end-to-end": "https://apps.example.test/ios-e2e"}},
                      actor="test")
        admin = staff.find("admin")
        account = accounts.create(
            {"account_type": "pgsm", "username": "10000001", "callerid": "+41791230001",
             "password": "Sip-password-1234", "owner": "Anna Meier", "email": "anna@example.com",
             "description": "", "security_model": "end-to-end", "obfuscation": False, "obfuscation_key": "",
             "keepalive": False, "mac_address": None, "deny": [], "permit": [], "profile_id": None,
             "secondary_callerid": None, "licence_expires_on": None, "group_id": group.id},
            wizard=True, actor=admin)
        return account.id


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, database_url):
    """Install and start the shipped pieces, as docs/operations.md says, on loopback ports of the test's."""
    require(*NEEDS)
    folder = tmp_path_factory.mktemp("deployment")
    tls, plain, web = free_port(), free_port(), free_port()
    cert, key = self_signed(folder)
    on_postgres = database_url.startswith("postgresql")
    url = database_url if on_postgres else f"sqlite:///{folder / 'instance' / 'provisio.db'}"
    (folder / "instance").mkdir(mode=0o700)
    encryption_key = Fernet.generate_key().decode()
    env_file = folder / "provisio.env"
    env_file.write_text(environment_file({
        "SECRET_KEY": secrets.token_urlsafe(48), "PROVISIO_ENCRYPTION_KEYS": encryption_key,
        "PUBLIC_BASE_URL": f"https://{HOST}:{tls}", "DATABASE_URL": url}))
    env_file.chmod(0o640)

    web_unit, worker_unit = read_unit("provisio-web.service"), read_unit("provisio-worker.service")
    files = {"/etc/provisio/provisio.env": env_file}
    runtime = folder / "run"
    for directory in web_unit.values("RuntimeDirectory"):
        (runtime / directory).mkdir(parents=True)  # systemd makes it, empty, at each start

    # Installation: `flask --app app setup` as the service's user, with its environment file.
    setup_env = worker_unit.environment(files, runtime)
    setup = subprocess.run([*worker_unit.command()[:3], "setup"], cwd=worker_unit.working_directory(),
                           env=setup_env, capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    admin_password = re.search(r"password: (\S+)", setup.stdout).group(1)
    app = create_app({**make_config(url), "ENCRYPTION_KEYS": [encryption_key]})
    smtp = SmtpServer().__enter__()
    account_id = seed(app, smtp.port)

    gunicorn_command = web_unit.command()
    gunicorn_command[gunicorn_command.index("--bind") + 1] = f"127.0.0.1:{web}"
    site = folder / "provisio.conf"
    site.write_text(nginx_site(tls=tls, plain=plain, upstream=web, cert=cert, key=key,
                               access_log=folder / "provisio.access.log"))
    (folder / "nginx.conf").write_text(nginx_main(folder, site))
    servers = [
        start(gunicorn_command, cwd=web_unit.working_directory(), env=web_unit.environment(files, runtime),
              log=folder / "web.log", umask=web_unit.umask()),
        start(worker_unit.command(), cwd=worker_unit.working_directory(),
              env=worker_unit.environment(files, runtime), log=folder / "worker.log",
              umask=worker_unit.umask()),
        start(nginx_command(nginx_binary(), folder, folder / "nginx.conf"), cwd=folder, env=dict(os.environ),
              log=folder / "nginx.out"),
    ]
    try:
        wait_for_port(web, servers[0], "gunicorn")
        wait_for_port(tls, servers[2], "nginx")
        yield Deployment(tls, plain, web, cert, folder, app, admin_password, account_id, smtp, url)
    finally:
        for server in servers:
            stop(server)
        smtp.__exit__()
        with app.app_context():
            db.engine.dispose()
        if on_postgres:
            empty(url)


def signed_in(deployment: Deployment) -> Browser:
    """The administrator `flask setup` made signs in: password, then the authenticator app's set-up."""
    browser = deployment.browser()
    login = browser.get("/auth/login")
    assert login.status_code == 200
    form = {"csrf_token": CSRF.search(login.text).group(1), "username": "admin",
            "password": deployment.admin_password}
    password_step = browser.post("/auth/login", form)
    assert (password_step.status_code, password_step.headers["Location"]) == (302, "/auth/two-factor")
    set_up = browser.get("/auth/two-factor")
    secret = TOTP_KEY.search(set_up.text).group(1).replace(" ", "")
    code = pyotp.TOTP(secret).now()  # what the authenticator app shows (the app checks with pyotp too)
    signed = browser.post("/auth/two-factor", {"csrf_token": CSRF.search(set_up.text).group(1), "code": code})
    assert signed.status_code == 302, signed.text
    assert browser.get("/").status_code == 200
    return browser


def wait_for_mail(smtp: SmtpServer, count: int):
    deadline = time.monotonic() + 30  # the worker looks for due messages every second
    while len(smtp.inbox.messages) < count:
        assert time.monotonic() < deadline, "the worker sent no e-mail"
        time.sleep(0.2)
    return smtp.inbox.messages[count - 1]


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
