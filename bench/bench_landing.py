"""Landing page and activation throughput, each divided by a bare Flask "hello" on the same gunicorn.

Prints `ratio landing_vs_hello` (target >= 0.5) and `ratio activation_vs_hello` (target >= 0.25).
Both servers run side by side and are loaded by wrk in turns (hello, landing, activation) for ROUNDS
rounds; each ratio is the median of its rounds', so a slow second on a shared machine skews one round
only. wrk shares the servers' cores: the report says how much CPU it took, and what hello does when wrk
gets twice the threads and connections (the same rate: wrk is not what limits it).
"""

import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    ROOT,
    WRK_CONNECTIONS,
    WRK_THREADS,
    gunicorn,
    ratio,
    scratch_env,
    sized,
    wrk,
)

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
ROUNDS = sized(9, 1)
SECONDS = sized(2, 1)  # of GETs per round, for hello and for the landing page (wrk counts whole seconds)
ACTIVATIONS = sized(600, 40)  # per round: each consumes one account's link
# Links a round prepares beyond ACTIVATIONS: a wrk thread stops at its quota with its other connections'
# posts in flight, and wrk asks for one request it never sends.
SPARE = 2 * WRK_CONNECTIONS
ACTIVATE_LUA = os.path.join(ROOT, "bench", "activate.lua")


def prepare(env: dict[str, str]) -> list[tuple[str, str]]:
    """Migrate a scratch database and make one wizard account per activation, each sent one link.

    Returns each account's link token and the form token its page carries (as a phone would post it).
    """
    os.environ.update(env)
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db, vault
    from models import Account, Channel, Group, Message, MessageKind, Profile
    from services import links

    app = create_app()
    with app.app_context():
        upgrade()
        group = Group(name="Bench", profile=Profile(name="Bench", sip_host="sip.example.net",
                                                    provisioning_host="prov.example.net"))
        password = vault.encrypt("bench-sip-password-1234567")
        accounts = [Account(username=f"9{i:07d}", callerid=f"+4179{i:07d}", password_encrypted=password,
                            group=group, wizard=True, enabled=False, security_model="end-to-end")
                    for i in range(ROUNDS * (ACTIVATIONS + SPARE) + 1)]
        # One queued link per account, as messaging.queue makes it; signed as the worker signs it.
        messages = [Message(account=account, kind=MessageKind.LINK, channel=Channel.SMS,
                            recipient=account.callerid, gateway="bench", link_version=0,
                            requested_by="bench") for account in accounts]
        for message in messages:
            links.attach(message)
        db.session.add_all([*accounts, *messages])
        db.session.commit()
        tokens = [links.token_of(message) for message in messages]
        return [(token, links.form_token(token)) for token in tokens]


def activations(port: int, links: list[tuple[str, str]]):
    """Activate ACTIVATIONS of `links` (one POST each, from WRK_THREADS threads) with wrk."""
    quota = -(-ACTIVATIONS // WRK_THREADS)
    with tempfile.NamedTemporaryFile("w", suffix=".links") as file:
        file.writelines(f"{token} {form_token}\n" for token, form_token in links)
        file.flush()
        # At most a minute, however slow the machine: each thread is done at its quota.
        run = wrk(port, "/", seconds=60, headers={"User-Agent": IPHONE}, script=ACTIVATE_LUA,
                  script_args=(file.name, str(WRK_THREADS), str(quota)), until_done=True)
    return run


def main() -> None:
    env = scratch_env()
    links = prepare(env)
    landing = f"/m/{links.pop()[0]}"
    phone = {"User-Agent": IPHONE}
    rounds, cpu = [], []
    with (gunicorn("bench.hello:create_app()", env) as hello_port,
          gunicorn("app:create_app()", env) as app_port):
        # Warm up: every worker imports its app, compiles its templates and opens its database.
        wrk(hello_port, "/", seconds=2)
        wrk(app_port, landing, seconds=3, headers=phone)
        for n in range(ROUNDS):
            hello = wrk(hello_port, "/", seconds=SECONDS)
            page = wrk(app_port, landing, seconds=SECONDS, headers=phone)
            files = activations(app_port, links[n * (ACTIVATIONS + SPARE):(n + 1) * (ACTIVATIONS + SPARE)])
            print(f"round {n + 1}: hello {hello.rate:.0f} req/s, landing {page.rate:.0f} req/s, "
                  f"activation {files.rate:.0f} req/s; wrk used {hello.cpu:.2f} / {page.cpu:.2f} / "
                  f"{files.cpu:.2f} of a core", flush=True)
            rounds.append((page.rate / hello.rate, files.rate / hello.rate))
            cpu.append((hello.cpu, page.cpu, files.cpu))
        # The same hello with twice wrk's threads and connections, in turns with the usual ones.
        pairs = [(wrk(hello_port, "/", seconds=SECONDS).rate,
                  wrk(hello_port, "/", seconds=SECONDS, threads=2 * WRK_THREADS,
                      connections=2 * WRK_CONNECTIONS).rate) for _ in range(sized(3, 1))]
    print("wrk cpu share (CPU seconds per second, median of rounds, of "
          f"{os.cpu_count()} cores): hello {statistics.median(c[0] for c in cpu):.2f}, "
          f"landing {statistics.median(c[1] for c in cpu):.2f}, "
          f"activation {statistics.median(c[2] for c in cpu):.2f}")
    print(f"wrk doubled (-t{2 * WRK_THREADS} -c{2 * WRK_CONNECTIONS} vs -t{WRK_THREADS} "
          f"-c{WRK_CONNECTIONS}): "
          f"hello {statistics.median(doubled / usual for usual, doubled in pairs):.2f} times the rate "
          f"(median of {len(pairs)} pairs: " + ", ".join(f"{d:.0f} vs {u:.0f}" for u, d in pairs) + " req/s)")
    ratio("landing_vs_hello", statistics.median(page for page, _ in rounds))
    ratio("activation_vs_hello", statistics.median(files for _, files in rounds))


if __name__ == "__main__":
    main()
