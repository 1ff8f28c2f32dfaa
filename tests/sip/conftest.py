"""A real Kamailio for the session, on Provisio's deploy/kamailio/kamailio.cfg, and apps wired to it.

Kamailio runs unprivileged on 127.0.0.1 and a free port, in its own process group, and is stopped by
SIGTERM to its own PID (a SIGKILL would leave its children running). Its registrar database is the
test database on PostgreSQL (TEST_DATABASE_URL; the migrations made its tables), two files of its own
on SQLite (`registrar.init_schema`). Without Kamailio and sipp these tests are left out, said in one
line, except under CI, where that is a failure.
"""

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import create_app
from services import registrar
from tests.support import make_config

from .sipp import free_port

TOOLS = ("kamailio", "kamcmd", "sipp")
MODULES = ("db_sqlite.so", "db_postgres.so")
PACKAGES = "kamailio kamailio-sqlite-modules kamailio-postgres-modules sip-tester"
MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/aarch64-linux-gnu/kamailio/modules",
               "/usr/lib/kamailio/modules")
HERE = Path(__file__).parent
LEFT_OUT_KEY = pytest.StashKey[tuple[int, str]]()


@dataclass(frozen=True)
class Kamailio:
    """The running SIP server: where it listens and the Provisio settings that point at it."""

    server: str
    config: dict
    log: Path
    pid: int

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def missing() -> list[str]:
    """The tools and database modules the SIP tests need and this machine lacks."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    return absent + [module for module in MODULES
                     if not any(os.path.exists(os.path.join(folder, module)) for folder in MODULE_DIRS)]


def _registrar_urls(database_url: str, folder: Path) -> dict:
    """The test database itself on PostgreSQL (Kamailio's scheme), two files of Kamailio's own on SQLite."""
    if database_url.startswith("postgresql"):
        url = "postgres://" + database_url.split("://", 1)[1]
        return {"REGISTRAR_DATABASE_URL": url, "REGISTRAR_LOCATION_URL": url}
    return {"REGISTRAR_DATABASE_URL": f"sqlite:///{folder / 'registrar.db'}",
            "REGISTRAR_LOCATION_URL": f"sqlite:///{folder / 'registrar-location.db'}"}


def _missing_message(absent: list[str]) -> str:
    return (f"SIP tests not run: {', '.join(absent)} missing. "
            f"To run them: apt-get install {PACKAGES} (CI does).")


def pytest_collection_modifyitems(config, items):
    """Without Kamailio and sipp (and outside CI) leave the SIP tests out, said once, not once a test."""
    if os.environ.get("CI") or not (absent := missing()):
        return
    sip_tests = [item for item in items if HERE in item.path.parents]
    if sip_tests:
        config.hook.pytest_deselected(items=sip_tests)
        items[:] = [item for item in items if HERE not in item.path.parents]
        config.stash[LEFT_OUT_KEY] = (len(sip_tests), _missing_message(absent))


def pytest_terminal_summary(terminalreporter, config):
    if left_out := config.stash.get(LEFT_OUT_KEY, None):
        terminalreporter.write_line(f"{left_out[1]} ({left_out[0]} tests)")


@pytest.fixture(scope="session")
def kamailio(database_url, tmp_path_factory):
    """Start Kamailio once for the session; keep-alive every second, registrations from one second."""
    if absent := missing():
        pytest.fail(_missing_message(absent))  # only under CI: elsewhere the tests were left out
    folder = tmp_path_factory.mktemp("kamailio")
    port = free_port()
    config = {**_registrar_urls(database_url, folder), "REGISTRAR_REALM": "provisio.test",
              "REGISTRAR_LISTEN": f"udp:127.0.0.1:{port} tcp:127.0.0.1:{port}",
              "REGISTRAR_CTL": f"unix:{folder / 'ctl'}", "REGISTRAR_MIN_EXPIRES": 1, "KEEPALIVE_INTERVAL": 1}
    app = create_app({**make_config(database_url), **config})
    with app.app_context():
        registrar.init_schema()
    log = folder / "kamailio.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(registrar.kamailio_command(str(folder)),
                                   env=registrar.kamailio_environment(app.config), stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = Kamailio(f"127.0.0.1:{port}", config, log, process.pid)
    try:
        _wait_until_up(process, server)
        yield server
    finally:
        os.kill(process.pid, signal.SIGTERM)  # the main process stops its children, then itself
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own group only: everything in it is ours
            process.wait()


def _wait_until_up(process: subprocess.Popen, server: Kamailio) -> None:
    """Wait until Kamailio answers on its control socket."""
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Kamailio did not start:\n{server.log_tail()}")
        done = subprocess.run(["kamcmd", "-s", server.config["REGISTRAR_CTL"], "core.uptime"],
                              capture_output=True, check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kamailio's control socket did not answer:\n{server.log_tail()}")
        time.sleep(0.1)


@pytest.fixture
def app(app, kamailio):
    """The test app, wired to the session's Kamailio; the registrar starts each test empty."""
    app.config.update(kamailio.config)
    with app.app_context():
        # No account exists yet (the previous test's were deleted): a full sync removes every
        # subscriber left and ends its registrations.
        registrar.sync()
        assert registrar.registered() == [], "a registration outlived its account"
    return app


@pytest.fixture
def sip(kamailio, tmp_path):
    """Where sipp sends to, and a folder for its logs."""
    return kamailio.server, tmp_path
