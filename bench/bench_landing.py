"""Landing page and activation throughput, each divided by a bare Flask "hello" on the same gunicorn.

Prints `ratio landing_vs_hello` (target >= 0.5) and `ratio activation_vs_hello` (target >= 0.25).
Both servers run side by side and are loaded in turns (hello, landing, activation) for ROUNDS rounds;
each ratio is the median of its rounds', so a slow second on a shared machine skews one round only.
"""

import os
import statistics
import sys
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import get, gunicorn, ratio, scratch_env, sized, throughput  # noqa: E402

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
ROUNDS = sized(9, 1)
REQUESTS = sized(600, 50)  # GETs per round, for hello and for the landing page
ACTIVATIONS = sized(250, 20)  # per round: each consumes one account's link


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
                    for i in range(ROUNDS * ACTIVATIONS + 1)]
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


def activate(links: list[tuple[str, str]]):
    """A request function for `throughput` that taps Activate on link number i."""

    def send(connection, i: int) -> int:
        token, form_token = links[i]
        body = urlencode({"csrf_token": form_token, "platform": "ios"})
        connection.request("POST", f"/m/{token}/activate", body=body, headers={
            "User-Agent": IPHONE, "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        return response.status

    return send


def main() -> None:
    env = scratch_env()
    links = prepare(env)
    landing = get(f"/m/{links.pop()[0]}", {"User-Agent": IPHONE})
    rounds = []
    with (gunicorn("bench.hello:create_app()", env) as hello_port,
          gunicorn("app:create_app()", env) as app_port):
        throughput(hello_port, get("/"), total=300)  # warm up
        throughput(app_port, landing, total=300)
        for n in range(ROUNDS):
            hello = throughput(hello_port, get("/"), total=REQUESTS)
            page = throughput(app_port, landing, total=REQUESTS)
            files = throughput(app_port, activate(links[n * ACTIVATIONS:]), total=ACTIVATIONS)
            print(f"round {n + 1}: hello {hello:.0f} req/s, landing {page:.0f} req/s, "
                  f"activation {files:.0f} req/s")
            rounds.append((page / hello, files / hello))
    ratio("landing_vs_hello", statistics.median(page for page, _ in rounds))
    ratio("activation_vs_hello", statistics.median(files for _, files in rounds))


if __name__ == "__main__":
    main()
