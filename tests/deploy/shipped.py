"""The files of deploy/ as a test runs them: as written, with only the values an operator changes replaced.

- nginx.conf: the site values its header lists (ports, certificate, upstream, install folder, log), each
  found where the shipped file has it, or the test fails saying which one is gone;
- the systemd units: their ExecStart, Environment, EnvironmentFile, WorkingDirectory, RuntimeDirectory
  and UMask read as systemd reads them, with /opt/provisio this checkout and /opt/provisio/.venv/bin the
  virtualenv running the tests;
- the deployment running: `running` installs and starts them (web nodes, workers, nginx) on the test's
  loopback ports, and a Browser speaks to it as the site's own host name.
"""

import os
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import requests
from cryptography.fernet import Fernet
from requests.adapters import HTTPAdapter
from sqlalchemy import text

from app import create_app
from extensions import db
from models import Group, Profile
from services import accounts, settings, staff
from tests.mail import SmtpServer, free_port
from tests.support import make_config
from tests.webtools import wait_for_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALLED = "/opt/provisio"
HOST = "activate.example.com"  # the shipped server_name, kept: the test's certificate names it
NGINX_BINARIES = ("/usr/sbin/nginx", "/usr/bin/nginx")


def nginx_binary() -> str | None:
    return next((path for path in NGINX_BINARIES if os.path.exists(path)), None) or shutil.which("nginx")


def venv_bin() -> Path:
    """The folder of the virtualenv's scripts (gunicorn, flask), the installed /opt/provisio/.venv/bin."""
    return Path(sys.executable).parent


def installed_here(text: str) -> str:
    """A shipped text with the install folder and its virtualenv replaced by this checkout's."""
    return text.replace(f"{INSTALLED}/.venv/bin", str(venv_bin())).replace(INSTALLED, str(ROOT))


# -- nginx --------------------------------------------------------------------------------------------

def replace_once(text: str, old: str, new: str, *, count: int = 1) -> str:
    assert text.count(old) == count, f"deploy/nginx.conf no longer has {old!r} {count} time(s)"
    return text.replace(old, new)


def nginx_site(*, tls: int, plain: int, upstreams: tuple[int, ...], cert: Path, key: Path,
               access_log: Path) -> str:
    """deploy/nginx.conf with the site values of its header replaced: loopback ports, the test's own
    certificate, the web nodes' ports (a `server` line each in the upstream), this checkout, the log in
    the test's folder."""
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstreams)
    site = (DEPLOY / "nginx.conf").read_text()
    for old, new, count in [
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl http2;", 1),
        ("listen 80;", f"listen 127.0.0.1:{plain};", 1),
        (f"/etc/letsencrypt/live/{HOST}/fullchain.pem", str(cert), 2),  # the header names it too
        (f"/etc/letsencrypt/live/{HOST}/privkey.pem", str(key), 1),
        ("    server 127.0.0.1:8000;\n", servers, 1),
        (f"alias {INSTALLED}/static/;", f"alias {ROOT}/static/;", 1),
        ("/var/log/nginx/provisio.access.log", str(access_log), 3),
    ]:
        site = replace_once(site, old, new, count=count)
    return site


def nginx_main(directory: Path, site: Path) -> str:
    """The nginx.conf around the site, as Debian's includes conf.d/ in http {}; foreground, in `directory`."""
    temp = "".join(f"{kind}_temp_path {directory}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    mime = "include /etc/nginx/mime.types;" if os.path.exists("/etc/nginx/mime.types") else ""
    # Debian's http {} block logs "combined" to access.log; the site's own access_log replaces it.
    return (f"daemon off; master_process off; pid {directory}/nginx.pid;\n"
            f"error_log {directory}/error.log info;\n"
            f"events {{ worker_connections 64; }}\n"
            f"http {{ {mime}\n{temp} access_log {directory}/access.log;\n"
            f"include {site}; }}\n")


def nginx_command(binary: str, directory: Path, config: Path) -> list[str]:
    return [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(config)]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for activate.example.com, made with `cryptography`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


# -- systemd units ------------------------------------------------------------------------------------

@dataclass
class Unit:
    """One unit file's [Service] settings, in their order (a key may repeat)."""

    name: str
    service: list[tuple[str, str]] = field(default_factory=list)

    def values(self, key: str) -> list[str]:
        return [value for name, value in self.service if name == key]

    def value(self, key: str) -> str:
        values = self.values(key)
        assert len(values) == 1, f"deploy/{self.name} has {len(values)} {key}= lines"
        return values[0]

    def command(self) -> list[str]:
        """ExecStart, split as systemd splits it, run from this checkout."""
        return shlex.split(installed_here(self.value("ExecStart")))

    def working_directory(self) -> Path:
        return Path(installed_here(self.value("WorkingDirectory")))

    def umask(self) -> int:
        return int(self.value("UMask"), 8)

    def environment(self, files: dict[str, Path], runtime: Path) -> dict[str, str]:
        """The environment systemd gives the process: EnvironmentFile= (each shipped path read from
        `files`; a "-" path may be missing) and Environment=, with /run/<RuntimeDirectory> in `runtime`."""
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        for key, value in self.service:
            if key == "EnvironmentFile":
                optional, path = value.startswith("-"), value.removeprefix("-")
                if path in files:
                    environment.update(read_environment_file(files[path]))
                else:
                    assert optional, f"deploy/{self.name} needs {path}"
        for value in self.values("Environment"):
            for assignment in shlex.split(value):
                name, _, setting = assignment.partition("=")
                for directory in self.values("RuntimeDirectory"):
                    setting = setting.replace(f"/run/{directory}", str(runtime / directory))
                environment[name] = setting
        return environment


def read_unit(name: str) -> Unit:
    """deploy/<name>, its [Service] section: comments dropped, backslash-continued lines joined."""
    text = (DEPLOY / name).read_text().replace("\\\n", " ")
    unit, section = Unit(name), None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            unit.service.append((key.strip(), value.strip()))
    return unit


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments, quotes)."""
    environment = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, _, value = line.partition("=")
        parts = shlex.split(value)
        environment[name.strip()] = parts[0] if parts else ""
    return environment


def environment_file(values: dict[str, str]) -> str:
    """deploy/provisio.env.example filled in: each of its settings given in `values` set, the others as
    shipped (a commented-out line set in `values` is uncommented)."""
    lines, left = [], dict(values)
    for line in (DEPLOY / "provisio.env.example").read_text().splitlines():
        match = re.match(r"^#? ?([A-Z_]+)=", line)
        if match and match.group(1) in left:
            line = f"{match.group(1)}={left.pop(match.group(1))}"
        lines.append(line)
    assert not left, f"deploy/provisio.env.example no longer names {sorted(left)}"
    return "\n".join(lines) + "\n"


# -- the deployment running ---------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
IDEMPOTENCY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
TOTP_KEY = re.compile(r'<p class="mono totp-key"[^>]*>([A-Z2-7 ]+)</p>')
# What a web node's access log says of each request (only with several nodes): the id nginx gave it.
NODE_LOG_FORMAT = "%({x-request-id}i)s %(s)s"


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
        self.answers: list[requests.Response] = []  # every answer it got, in order

    def get(self, path: str, **kwargs) -> requests.Response:
        response = self.session.get(self.address + path, allow_redirects=False, timeout=30, **kwargs)
        self.page = self.origin + path
        self.answers.append(response)
        return response

    def post(self, path: str, data: dict, *, referrer: bool = True, **kwargs) -> requests.Response:
        sent = {"Origin": self.origin, **({"Referer": self.page} if referrer and self.page else {})}
        response = self.session.post(self.address + path, data=data, headers=sent, allow_redirects=False,
                                     timeout=30, **kwargs)
        self.answers.append(response)
        return response

    def form_token(self) -> str:
        return CSRF.search(self.get(self.page.removeprefix(self.origin)).text).group(1)


@dataclass
class Deployment:
    tls: int
    plain: int
    webs: tuple[int, ...]  # each web node's port
    cert: Path
    folder: Path
    app: object  # the test's own app over the deployment's database (same encryption key)
    admin_password: str
    account_id: int
    smtp: SmtpServer
    database_url: str

    @property
    def web(self) -> int:
        return self.webs[0]

    @property
    def access_log(self) -> str:
        return (self.folder / "provisio.access.log").read_text()

    def browser(self, **kwargs) -> Browser:
        return Browser(self.tls, self.cert, **kwargs)

    def served_by(self, response: requests.Response) -> int:
        """The web node (0, 1, ...) whose access log has the request id of this answer nginx passed on."""
        request_id = response.headers["X-Request-ID"]
        deadline = time.monotonic() + 10  # gunicorn writes its line once the answer has left
        while True:
            nodes = [node for node in range(len(self.webs))
                     if re.search(rf"^{request_id} ", node_log(self.folder, node).read_text(), re.M)]
            if nodes or time.monotonic() > deadline:
                assert len(nodes) == 1, f"request {request_id} is in the logs of nodes {nodes}"
                return nodes[0]
            time.sleep(0.1)

    def steer(self, node: int) -> None:
        """Make `node` the one nginx passes the next request to: it takes turns (round robin, one nginx
        process), so answer /healthz on the others until the last one answered came from the node before.
        The caller still checks with served_by who answered."""
        for _ in range(len(self.webs)):
            if (self.served_by(self.browser().get("/healthz")) + 1) % len(self.webs) == node:
                return


def node_log(folder: Path, node: int) -> Path:
    return folder / f"node-{node}.access.log"


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
        return add_account(app, group.id, "10000001", "+41791230001", owner="Anna Meier",
                           email="anna@example.com")


def add_account(app, group_id: int, username: str, callerid: str, *, owner: str, email: str) -> int:
    """A wizard account of the group, made as the administrator makes one in the console; its id."""
    with app.app_context():
        account = accounts.create(
            {"account_type": "pgsm", "username": username, "callerid": callerid,
             "password": "Sip-password-1234", "owner": owner, "email": email,
             "description": "", "security_model": "end-to-end", "obfuscation": False, "obfuscation_key": "",
             "keepalive": False, "mac_address": None, "deny": [], "permit": [], "profile_id": None,
             "secondary_callerid": None, "licence_expires_on": None, "group_id": group_id},
            wizard=True, actor=staff.find("admin"))
        return account.id


def web_command(unit: Unit, port: int, access_log: Path | None) -> list[str]:
    """The web unit's ExecStart bound to `port`, with gunicorn's access log of request ids if asked."""
    command = unit.command()
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    if access_log:
        command[1:1] = ["--access-logfile", str(access_log), "--access-logformat", NODE_LOG_FORMAT]
    return command


def wait_for_answer(port: int) -> None:
    """Wait until a web node answers /healthz itself (a listening port may not yet have a booted worker),
    as a load balancer checks a node before it sends it requests."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"the web node on port {port} does not answer /healthz"
        time.sleep(0.2)


@contextmanager
def running(folder: Path, database_url: str, *, nodes: int = 1, workers: int = 1) -> Iterator[Deployment]:
    """Install and start the shipped pieces, as docs/operations.md says, on loopback ports of the test's:
    `nodes` gunicorns with the web unit's command line (each on its own port, with its own metrics folder;
    with more than one, each also logs the request id of every request it serves, NODE_LOG_FORMAT),
    `workers` workers as their unit starts them, nginx in front with every node in its upstream."""
    tls, plain = free_port(), free_port()
    webs = tuple(free_port() for _ in range(nodes))
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
    runtimes = [folder / f"run-{node}" for node in range(nodes)]  # each node is its own machine
    for runtime in runtimes:
        for directory in web_unit.values("RuntimeDirectory"):
            (runtime / directory).mkdir(parents=True)  # systemd makes it, empty, at each start

    # Installation: `flask --app app setup` as the service's user, with its environment file.
    setup = subprocess.run([*worker_unit.command()[:3], "setup"], cwd=worker_unit.working_directory(),
                           env=worker_unit.environment(files, runtimes[0]), capture_output=True, text=True,
                           timeout=120)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    admin_password = re.search(r"password: (\S+)", setup.stdout).group(1)
    app = create_app({**make_config(url), "ENCRYPTION_KEYS": [encryption_key]})
    smtp = SmtpServer().__enter__()
    account_id = seed(app, smtp.port)

    site = folder / "provisio.conf"
    site.write_text(nginx_site(tls=tls, plain=plain, upstreams=webs, cert=cert, key=key,
                               access_log=folder / "provisio.access.log"))
    (folder / "nginx.conf").write_text(nginx_main(folder, site))
    servers = []
    try:
        for node, (port, runtime) in enumerate(zip(webs, runtimes, strict=True)):
            command = web_command(web_unit, port, node_log(folder, node) if nodes > 1 else None)
            servers.append(start(command, cwd=web_unit.working_directory(),
                                 env=web_unit.environment(files, runtime), log=folder / f"web-{node}.log",
                                 umask=web_unit.umask()))
        for worker in range(workers):
            servers.append(start(worker_unit.command(), cwd=worker_unit.working_directory(),
                                 env=worker_unit.environment(files, runtimes[0]),
                                 log=folder / f"worker-{worker}.log", umask=worker_unit.umask()))
        servers.append(start(nginx_command(nginx_binary(), folder, folder / "nginx.conf"), cwd=folder,
                             env=dict(os.environ), log=folder / "nginx.out"))
        for port, server in zip(webs, servers, strict=False):
            wait_for_port(port, server, "gunicorn")
            wait_for_answer(port)
        wait_for_port(tls, servers[-1], "nginx")
        yield Deployment(tls, plain, webs, cert, folder, app, admin_password, account_id, smtp, url)
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
