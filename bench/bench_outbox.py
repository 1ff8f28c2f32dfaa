"""Outbox throughput: 10,000 queued SMS delivered by `flask worker` to a local Vonage, divided by what the
same fake Vonage accepts from the gateway alone (same number of threads, no database).

The fake answers each request after LATENCY seconds, as a provider across the internet does (real ones
take 100-300 ms); `ratio outbox_vs_gateway` (target >= 0.5) is measured that way. The same pair without
latency, `ratio outbox_vs_gateway_no_latency`, shows what the database costs per message on this machine.
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import ROOT, ratio, scratch_env, sized  # noqa: E402
from gateways.base import Outgoing  # noqa: E402
from gateways.vonage import VonageGateway  # noqa: E402
from tools.fake_providers import FakeVonage  # noqa: E402

MESSAGES = sized(10_000, 200)
GATEWAY_ALONE = sized(2_000, 100)
THREADS = 8
LATENCY = 0.05
VONAGE = {"api_key": "bench-key", "api_secret": "bench-secret", "sender": "Provisio"}
# The fake takes any rate: the gateway's pace is set past anything this machine sends, so the figures
# measure the outbox, not a provider's limit.
UNPACED = 10_000


def prepare(env: dict[str, str], base_url: str) -> None:
    """Migrate a scratch database, point SMS at the fake and queue one link SMS to each of MESSAGES accounts.

    Rows are inserted in bulk, as `messaging.queue` would leave them: the benchmark times delivery only.
    """
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db, vault
    from models import Account, Channel, Group, Message, MessageKind, Profile
    from services import links, settings

    app = create_app({"SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"], "SECRET_KEY": env["SECRET_KEY"],
                      "ENCRYPTION_KEYS": [env["PROVISIO_ENCRYPTION_KEYS"]]})
    with app.app_context():
        upgrade()
        vonage = {"api_key": VONAGE["api_key"], "api_secret_encrypted": vault.encrypt(VONAGE["api_secret"]),
                  "sender": VONAGE["sender"], "base_url": base_url, "rate": UNPACED}
        settings.save({"public_base_url": "https://activate.example.test",
                       "sms": {"gateway": "vonage", "vonage": vonage}}, actor="bench")
        group = Group(name="Bench", profile=Profile(name="Bench", sip_host="sip.example.net",
                                                    provisioning_host="prov.example.net"))
        password = vault.encrypt("bench-sip-password-1234567")
        for start in range(0, MESSAGES, 1000):
            accounts = [Account(username=f"7{i:07d}", callerid=f"+4177{i:07d}", password_encrypted=password,
                                group=group, wizard=True, enabled=False, security_model="end-to-end",
                                link_version=1) for i in range(start, min(start + 1000, MESSAGES))]
            messages = [Message(account=account, kind=MessageKind.LINK, channel=Channel.SMS,
                                recipient=account.callerid, gateway="vonage", link_version=1,
                                requested_by="bench") for account in accounts]
            for message in messages:
                links.attach(message)  # its own random link, as messaging.queue gives it
            db.session.add_all([*accounts, *messages])
            db.session.commit()


def gateway_alone(base_url: str) -> float:
    """SMS per second the fake accepts from THREADS threads calling the gateway directly."""
    gateway = VonageGateway({**VONAGE, "base_url": base_url})
    outgoing = [Outgoing(f"+4176{i:07d}", "", "Your link: https://activate.example.test/m/x")
                for i in range(GATEWAY_ALONE)]
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(gateway.send, outgoing))
    elapsed = time.perf_counter() - started
    if failed := [result for result in results if result.provider_id is None]:
        raise RuntimeError(f"the gateway alone failed: {failed[0].detail}")
    return GATEWAY_ALONE / elapsed


def outbox(env: dict[str, str], vonage: FakeVonage) -> float:
    """SMS per second one `flask worker` process with THREADS threads hands to the fake."""
    before = len(vonage.accepted)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flask", "worker", "--once", "--threads", str(THREADS)],
                   cwd=ROOT, env={**os.environ, **env, "FLASK_APP": "app"}, check=True,
                   stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    if (sent := len(vonage.accepted) - before) != MESSAGES:
        raise RuntimeError(f"the worker sent {sent} of {MESSAGES} messages")
    return MESSAGES / elapsed


def measure(latency: float) -> tuple[float, float]:
    """(outbox, gateway alone) in SMS per second against a fake answering after `latency` seconds."""
    with FakeVonage(VONAGE["api_key"], VONAGE["api_secret"]) as vonage:
        vonage.latency = latency
        env = scratch_env()
        prepare(env, vonage.base_url)
        alone = gateway_alone(vonage.base_url)
        delivered = outbox(env, vonage)
    print(f"latency {latency * 1000:.0f} ms: gateway alone {alone:.0f} SMS/s, outbox {delivered:.0f} SMS/s")
    return delivered, alone


def main() -> None:
    delivered, alone = measure(LATENCY)
    raw_delivered, raw_alone = measure(0.0)
    ratio("outbox_vs_gateway", delivered / alone)
    ratio("outbox_vs_gateway_no_latency", raw_delivered / raw_alone)


if __name__ == "__main__":
    main()
