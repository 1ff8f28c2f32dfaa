"""The systemd units of deploy/ as systemd itself reads them: `systemd-analyze verify` finds nothing to
say, and `systemd-analyze security` rates the Provisio services well hardened, as an unprivileged user."""

import re
import subprocess

import pytest

from tests.deploy.conftest import require
from tests.deploy.shipped import DEPLOY, installed_here

NEEDS = ("systemd-analyze",)
UNITS = sorted(path.name for path in [*DEPLOY.glob("*.service"), *DEPLOY.glob("*.timer")])
PROVISIO_SERVICES = ["provisio-web.service", "provisio-worker.service", "provisio-backup.service"]
# Overall exposure in systemd-analyze's tenths (it prints 0.0 to 10.0; under 2.0 reads "OK"): the shipped
# units score 1.3, 8.7 without their hardening.
EXPOSURE_THRESHOLD = 20


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The units as installed from this checkout: /opt/provisio is here, so verify finds each command."""
    require(*NEEDS)
    folder = tmp_path_factory.mktemp("systemd")
    for name in UNITS:
        (folder / name).write_text(installed_here((DEPLOY / name).read_text()))
    return folder


def analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


def test_the_shipped_units_pass_systemd_analyze_verify_without_a_warning(installed):
    result = analyze("verify", *(str(installed / name) for name in UNITS))

    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


@pytest.mark.parametrize("name", PROVISIO_SERVICES)
def test_a_provisio_service_runs_hardened_as_an_unprivileged_user(installed, name):
    result = analyze("security", "--offline=true", f"--threshold={EXPOSURE_THRESHOLD}", str(installed / name))

    report = result.stdout
    assert result.returncode == 0, report  # exposure above the threshold exits 1
    assert re.search(r"^✓ User=/DynamicUser=\s+Service runs under a static non-root user identity",
                     report, re.M)
    for setting in ("NoNewPrivileges=", "ProtectSystem=", "CapabilityBoundingSet=~CAP_SYS_ADMIN", "UMask="):
        assert re.search(rf"^✓ {re.escape(setting)}", report, re.M), f"{setting} not set:\n{report}"
