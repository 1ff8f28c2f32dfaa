"""sipp, the SIP client of these tests: it registers, calls and answers; its message log says what it saw."""

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"
SEPARATOR = "-" * 47 + " "
CHALLENGES = (401, 407)


@dataclass(frozen=True)
class Message:
    """One SIP message in sipp's log: when, which way, its first line and headers."""

    at: datetime
    received: bool
    start_line: str
    headers: dict[str, str]

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]

    @property
    def status(self) -> tuple[int, str] | None:
        """(code, reason) of a response."""
        if not self.start_line.startswith("SIP/2.0 "):
            return None
        parts = self.start_line.split(" ", 2)
        return int(parts[1]), parts[2] if len(parts) > 2 else ""


@dataclass
class Run:
    """A sipp process and its message log."""

    log: Path
    port: int
    tcp: bool = False
    process: subprocess.Popen | None = None
    returncode: int | None = None
    output: str = field(default="", repr=False)

    def messages(self) -> list[Message]:
        """Every message sipp sent or received so far, in order."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [message for block in text.split(SEPARATOR)[1:] if (message := _parse(block))]

    def received(self, method: str) -> list[Message]:
        """The requests of a method that reached this client."""
        return [message for message in self.messages() if message.received and message.method == method]

    def final(self, method: str = "") -> tuple[int, str] | None:
        """The last final response sipp received (to a request of `method`), digest challenges aside."""
        answers = [message.status for message in self.messages() if message.received and message.status
                   and message.status[0] >= 200 and message.status[0] not in CHALLENGES
                   and message.headers.get("cseq", "").endswith(method)]
        return answers[-1] if answers else None


def free_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _command(scenario: str, server: str, run: Run, *, user: str, password: str, source: str,
             keys: dict[str, str], extra: list[str]) -> list[str]:
    command = ["sipp", server, "-sf", str(SCENARIOS / scenario), "-s", user, "-au", user, "-ap", password,
               "-i", source, "-p", str(run.port), "-m", "1", "-nostdin", "-trace_msg",
               "-message_file", str(run.log), "-timeout", "20s", "-t", "t1" if run.tcp else "u1"]
    for key, value in keys.items():
        command += ["-key", key, value]
    return command + extra


def run(scenario: str, server: str, tmp: Path, *, user: str, password: str, source: str = "127.0.0.1",
        tcp: bool = False, keys: dict[str, str] | None = None, extra: list[str] | None = None) -> Run:
    """Run a scenario to its end, over UDP (or TCP)."""
    result = Run(log=tmp / f"sipp-{user}-{time.monotonic_ns()}.log", port=free_port(source), tcp=tcp)
    done = subprocess.run(_command(scenario, server, result, user=user, password=password, source=source,
                                   keys=keys or {}, extra=extra or []),
                          capture_output=True, text=True, timeout=30, check=False)
    result.returncode, result.output = done.returncode, done.stdout[-3000:] + done.stderr[-3000:]
    return result


def register(server: str, tmp: Path, user: str, password: str, *, source: str = "127.0.0.1",
             tcp: bool = False, expires: int = 60, user_agent: str = "sipp") -> Run:
    """REGISTER once with digest authentication; `final()` is the registrar's answer."""
    return run("register.xml", server, tmp, user=user, password=password, source=source, tcp=tcp,
               keys={"expires": str(expires), "user_agent": user_agent}, extra=["-d", "0"])


def call(server: str, tmp: Path, user: str, password: str, number: str, *, source: str = "127.0.0.1",
         tcp: bool = False) -> Run:
    """Call a virtual number; answered, hang up at once. `final("INVITE")` is the answer to the call."""
    return run("call.xml", server, tmp, user=user, password=password, source=source, tcp=tcp,
               keys={"number": number})


@contextlib.contextmanager
def client(server: str, tmp: Path, user: str, password: str, *, answer: bool = True,
           source: str = "127.0.0.1", tcp: bool = False, expires: int = 60,
           user_agent: str = "sipp") -> Iterator[Run]:
    """A client registered until the block ends, answering calls (answer.xml) or else keep-alive OPTIONS."""
    result = Run(log=tmp / f"sipp-{user}-{time.monotonic_ns()}.log", port=free_port(source), tcp=tcp)
    extra = ["-d", "30000"] + (["-oocsf", str(SCENARIOS / "answer.xml")] if answer else ["-aa"])
    result.process = subprocess.Popen(
        _command("register.xml", server, result, user=user, password=password, source=source,
                 keys={"expires": str(expires), "user_agent": user_agent}, extra=extra),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while result.final("REGISTER") is None:
            assert result.process.poll() is None, "the client stopped before it registered"
            assert time.monotonic() < deadline, "the client did not register"
            time.sleep(0.02)
        assert result.final("REGISTER") == (200, "OK"), f"the client was refused: {result.final('REGISTER')}"
        yield result
    finally:
        result.process.send_signal(signal.SIGTERM)  # sipp stops at once, its log written
        result.returncode = result.process.wait(timeout=10)


def _parse(block: str) -> Message | None:
    lines = block.replace("\r", "").split("\n")
    if len(lines) < 4 or not lines[1].startswith(("UDP message", "TCP message")):
        return None
    at = datetime.strptime(lines[0].strip(), "%Y-%m-%d %H:%M:%S.%f")
    body = lines[2:]
    while body and not body[0].strip():
        body.pop(0)
    if not body:
        return None
    headers: dict[str, str] = {}
    for line in body[1:]:
        if not line.strip():
            break
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Message(at, "received" in lines[1], body[0].strip(), headers)
