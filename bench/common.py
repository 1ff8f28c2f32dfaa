"""Shared benchmark plumbing: a gunicorn server on a free loopback port, and wrk to load it."""

import atexit
import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.fernet import Fernet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The production settings of docs/operations.md: (2 x cores) + 1 sync workers behind the reverse proxy.
GUNICORN = ["--workers", str(2 * (os.cpu_count() or 1) + 1), "--worker-class", "sync",
            "--log-level", "warning"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(app_spec: str, env: dict[str, str]) -> Iterator[int]:
    """Run `gunicorn app_spec` on 127.0.0.1 until the block ends; yield its port.

    The server's output (the app's line per request) goes to a file, as to the journal in production,
    not to the terminal or CI log the benchmark prints to; its last lines are shown if the block fails.
    """
    port = free_port()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}", app_spec],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_a_worker(port)
            yield port
        except BaseException:
            log.seek(0)
            print(f"-- the last lines of {app_spec}'s output:\n" + "".join(log.readlines()[-30:]),
                  file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for_a_worker(port: int) -> None:
    """Until a worker answers (any status): the port opens before the workers have imported the app."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    raise RuntimeError("gunicorn did not start")


# wrk (the Debian package): an event loop in C, so the load generator costs a fraction of what the server
# does. Two threads for the two cores the servers share with it; eight connections, as many as the
# sync workers (2 x cores + 1) and a few more waiting in the listen queue.
WRK_THREADS = 2
WRK_CONNECTIONS = 8
_WRK_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run measured."""

    requests: int  # complete answers
    seconds: float  # wrk's own time from its start to the last thread's end
    cpu: float  # wrk's user + system CPU seconds per wall-clock second (1.0 = one whole core)

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def wrk(port: int, path: str, *, seconds: int, headers: dict[str, str] | None = None,
        script: str | None = None, script_args: Sequence[str] = (), threads: int = WRK_THREADS,
        connections: int = WRK_CONNECTIONS, until_done: bool = False) -> WrkRun:
    """Load http://127.0.0.1:port/path with wrk for `seconds`.

    With `until_done`, the script's threads each print "done" when their work is done: the run is timed
    to the last one's and wrk is ended there (with --duration as the bound), as wrk itself always waits
    out its --duration. Any answer other than 2xx/3xx, and any socket error but the server closing its
    connections (a sync gunicorn worker answers `Connection: close`), raises: a broken page cannot look
    fast.
    """
    if shutil.which("wrk") is None:
        raise RuntimeError("bench needs wrk, the HTTP load generator: apt-get install wrk")
    command = ["wrk", f"--threads={threads}", f"--connections={connections}", f"--duration={seconds}s",
               f"--timeout={max(seconds, 2)}s",
               *(part for name, value in (headers or {}).items() for part in ("-H", f"{name}: {value}")),
               *(["--script", script] if script else []),
               f"http://127.0.0.1:{port}{path}", *(["--", *script_args] if script_args else [])]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done, lines = None, []
    if until_done:
        for line in process.stdout:
            lines.append(line)
            if line == "done\n" and lines.count(line) == threads:
                done = time.perf_counter() - started
                process.send_signal(signal.SIGINT)  # wrk stops its threads and prints its report
                break
    output = "".join(lines) + process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)  # its CPU time, which subprocess does not report
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{output}")
    requests, wrk_seconds = _wrk_totals(output)
    if until_done and done is None:
        raise RuntimeError(f"wrk's threads were not done in {seconds}s:\n{output}")
    return WrkRun(requests, done or wrk_seconds, cpu=(usage.ru_utime + usage.ru_stime) / elapsed)


def _wrk_totals(output: str) -> tuple[int, float]:
    """The complete requests and seconds of a wrk report; raise for failed answers or socket errors."""
    totals = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", output, re.MULTILINE)
    if totals is None:
        raise RuntimeError(f"no totals in wrk's report:\n{output}")
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if failed:
        raise RuntimeError(f"{failed.group(1)} answers were not 2xx/3xx:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read \d+, write (\d+), timeout (\d+)", output)
    if errors and any(int(count) for count in errors.groups()):
        raise RuntimeError(f"wrk had socket errors:\n{output}")
    requests = int(totals.group(1))
    if not requests:
        raise RuntimeError(f"wrk completed no request:\n{output}")
    return requests, float(totals.group(2)) * _WRK_TIME[totals.group(3)]


def scratch_env() -> dict[str, str]:
    """Environment for a throwaway Provisio on its own SQLite file."""
    directory = tempfile.mkdtemp(prefix="provisio-bench-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return {
        "PROVISIO_ENV": "development",
        "SECRET_KEY": secrets.token_urlsafe(48),  # production refuses a short key
        "PROVISIO_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": f"sqlite:///{directory}/bench.db",
        "SESSION_COOKIE_SECURE": "0",
    }


# BENCH_SIZE=small runs every benchmark through at a size CI can afford: it proves each still runs (a
# broken one fails the build), and its figures, printed with a "(small)" mark, measure nothing.
SMALL_RUN = os.environ.get("BENCH_SIZE") == "small"


def sized(full, small):
    """The benchmark's size, or its small-run stand-in under BENCH_SIZE=small."""
    return small if SMALL_RUN else full


def ratio(name: str, value: float) -> None:
    """Print one figure in the form every benchmark uses."""
    print(f"ratio {name} {value:.2f}" + (" (small)" if SMALL_RUN else ""), flush=True)
