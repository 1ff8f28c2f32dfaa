"""The files of deploy/ as a test runs them: as written, with only the values an operator changes replaced.

- nginx.conf: the site values its header lists (ports, certificate, upstream, install folder, log), each
  found where the shipped file has it, or the test fails saying which one is gone;
- the systemd units: their ExecStart, Environment, EnvironmentFile, WorkingDirectory, RuntimeDirectory
  and UMask read as systemd reads them, with /opt/provisio this checkout and /opt/provisio/.venv/bin the
  virtualenv running the tests.
"""

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def nginx_site(*, tls: int, plain: int, upstream: int, cert: Path, key: Path, access_log: Path) -> str:
    """deploy/nginx.conf with the site values of its header replaced: loopback ports, the test's own
    certificate, the upstream's port, this checkout, the log in the test's folder."""
    site = (DEPLOY / "nginx.conf").read_text()
    for old, new, count in [
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl http2;", 1),
        ("listen 80;", f"listen 127.0.0.1:{plain};", 1),
        (f"/etc/letsencrypt/live/{HOST}/fullchain.pem", str(cert), 2),  # the header names it too
        (f"/etc/letsencrypt/live/{HOST}/privkey.pem", str(key), 1),
        ("http://127.0.0.1:8000", f"http://127.0.0.1:{upstream}", 1),
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
