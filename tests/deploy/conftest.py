"""The shipped deployment (deploy/) run as written: each module names the programs it runs in NEEDS.

Without one of them (and outside CI) its tests are left out, said in one line, not once a test; under
CI a missing program is a failure (.ci/run installs them). A module with POSTGRESQL = True (several web
nodes share one database) is left out the same way, CI included, unless TEST_DATABASE_URL is PostgreSQL.
"""

import importlib.util
import os
import shutil

import pytest

from tests.deploy.shipped import nginx_binary

PACKAGES = {"nginx": "nginx-light", "gunicorn": "gunicorn (requirements.txt)", "systemd-analyze": "systemd"}
LEFT_OUT_KEY = pytest.StashKey[dict[str, int]]()


def present(program: str) -> bool:
    if program == "nginx":
        return nginx_binary() is not None
    if program == "gunicorn":
        return importlib.util.find_spec("gunicorn") is not None
    return shutil.which(program) is not None


def missing(needs: tuple[str, ...]) -> list[str]:
    return [program for program in needs if not present(program)]


def message(absent: list[str]) -> str:
    return (f"Deployment tests not run: {', '.join(absent)} missing. "
            f"To run them: install {', '.join(PACKAGES[name] for name in absent)} (CI does).")


ON_POSTGRESQL_ONLY = ("Deployment tests of several web nodes not run: they need TEST_DATABASE_URL to be "
                      "PostgreSQL.")


def reason_left_out(item) -> str | None:
    """Why this machine leaves a deployment test out: SQLite for a test of several nodes, or (outside CI)
    a program it lacks; None to run it."""
    if "tests/deploy/" not in item.nodeid:
        return None
    if getattr(item.module, "POSTGRESQL", False) and not os.environ.get("TEST_DATABASE_URL", "").startswith(
            "postgres"):
        return ON_POSTGRESQL_ONLY
    absent = [] if os.environ.get("CI") else missing(getattr(item.module, "NEEDS", ()))
    return message(absent) if absent else None


def pytest_collection_modifyitems(config, items):
    """Leave out the tests this machine cannot run (reason_left_out); count them per reason."""
    kept, left_out = [], {}
    for item in items:
        if reason := reason_left_out(item):
            left_out[reason] = left_out.get(reason, 0) + 1
        else:
            kept.append(item)
    if left_out:
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
        config.stash[LEFT_OUT_KEY] = left_out


def pytest_terminal_summary(terminalreporter, config):
    for line, count in config.stash.get(LEFT_OUT_KEY, {}).items():
        terminalreporter.write_line(f"{line} ({count} tests)")


def require(*programs: str) -> None:
    """Fail (only under CI do the tests get here without them) when a program is missing."""
    if absent := missing(programs):
        pytest.fail(message(absent))
