"""Shared benchmark plumbing: a gunicorn server on a free loopback port and a keep-alive load loop."""

import atexit
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
    """Run `gunicorn app_spec` on 127.0.0.1 until the block ends; yield its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}", app_spec],
        cwd=ROOT, env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def throughput(port: int, request: Callable[[http.client.HTTPConnection, int], int], *,
               total: int, threads: int = 8) -> float:
    """Send `total` requests from `threads` keep-alive connections; return requests per second.

    `request(connection, i)` sends request number i and returns the HTTP status; any status other
    than 2xx/3xx stops the run, so a broken page cannot look fast.
    """
    counter = iter(range(total))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not failures:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            status = request(connection, i)
            if status >= 400:
                failures.append(f"request {i} answered {status}")

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(failures[0])
    return total / elapsed


def get(path: str, headers: dict[str, str] | None = None):
    """A request function for `throughput` that GETs one path."""

    def send(connection: http.client.HTTPConnection, _i: int) -> int:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status

    return send


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
