"""Landing page and activation throughput, each divided by a bare Flask "hello" on the same gunicorn.

Prints `ratio landing_vs_hello` (target >= 0.5) and `ratio activation_vs_hello` (target >= 0.25).
"""

import os
import re
import sys
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import get, gunicorn, ratio, scratch_env, throughput  # noqa: E402

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
REQUESTS = 3000
ACTIVATIONS = 1500


def prepare(env: dict[str, str]) -> list[str]:
    """Migrate a scratch database and make one wizard account per activation; return their tokens."""
    os.environ.update(env)
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db, vault
    from models import Account, Group, Profile
    from services import links

    app = create_app()
    with app.app_context():
        upgrade()
        group = Group(name="Bench", profile=Profile(name="Bench", sip_host="sip.example.net",
                                                    provisioning_host="prov.example.net"))
        password = vault.encrypt("bench-sip-password-1234567")
        accounts = [Account(username=f"9{i:07d}", callerid=f"+4179{i:07d}", password_encrypted=password,
                            group=group, wizard=True, enabled=False, security_model="end-to-end")
                    for i in range(ACTIVATIONS + 1)]
        db.session.add_all(accounts)
        db.session.commit()
        return [links.make_token(account.id, 0) for account in accounts]


def session_and_csrf(port: int, token: str) -> tuple[str, str]:
    """Open the page once, as a phone does, for its session cookie and form token."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", f"/m/{token}", headers={"User-Agent": IPHONE})
    response = connection.getresponse()
    html = response.read().decode()
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    return cookie, re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def main() -> None:
    env = scratch_env()
    tokens = prepare(env)
    with gunicorn("bench.hello:create_app()", env) as port:
        throughput(port, get("/"), total=300)  # warm up
        hello = throughput(port, get("/"), total=REQUESTS)
    with gunicorn("app:create_app()", env) as port:
        landing_path = f"/m/{tokens[-1]}"
        throughput(port, get(landing_path, {"User-Agent": IPHONE}), total=300)
        landing = throughput(port, get(landing_path, {"User-Agent": IPHONE}), total=REQUESTS)
        cookie, csrf = session_and_csrf(port, tokens[-1])

        def activate(connection, i: int) -> int:
            body = urlencode({"csrf_token": csrf, "platform": "ios"})
            connection.request("POST", f"/m/{tokens[i]}/activate", body=body, headers={
                "User-Agent": IPHONE, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
            response = connection.getresponse()
            response.read()
            return response.status

        activation = throughput(port, activate, total=ACTIVATIONS)
    print(f"hello {hello:.0f} req/s, landing {landing:.0f} req/s, activation {activation:.0f} req/s")
    ratio("landing_vs_hello", landing / hello)
    ratio("activation_vs_hello", activation / hello)


if __name__ == "__main__":
    main()
